using System.Text.Json;
using Hici.Text;

namespace Hici.Tests.Text;

/// <summary>Renderings must equal the Jinja templates rendered by @huggingface/jinja
/// (tests/fixtures/chat_templates, from tools/tokenizer_reference.mjs).</summary>
public class ChatTemplateTests
{
    sealed record Message(string Role, string Content, [property: System.Text.Json.Serialization.JsonPropertyName("reasoning_content")] string? ReasoningContent);
    sealed record Conversation(string Name, List<Message> Messages);
    sealed record Case(string Conversation, [property: System.Text.Json.Serialization.JsonPropertyName("add_generation_prompt")] bool AddGenerationPrompt,
        [property: System.Text.Json.Serialization.JsonPropertyName("enable_thinking")] bool? EnableThinking, string? Text, string? Error);
    sealed record Fixture(List<Conversation> Conversations, List<Case> Cases);

    static Fixture Load(string name) => TokenizerFixtures.Read<Fixture>(TestData.Fixture("chat_templates", $"{name}.expected.json"));

    static ChatTemplate TemplateFor(string name) => name switch
    {
        // The llama2 data package is Mistral-7B v0.1 (no chat_template); the Llama-2 template is the
        // committed Jinja text, recognised by Identify and rendered with that package's <s> / </s>.
        "llama2" => ChatTemplate.Create(
            ChatTemplate.Identify(File.ReadAllText(TestData.Fixture("chat_templates", "llama2.jinja"))) ?? throw new Xunit.Sdk.XunitException("llama2.jinja not identified"),
            TestData.Tokenizer("llama2").BosToken, TestData.Tokenizer("llama2").EosToken),
        _ => ChatTemplate.For(TestData.Tokenizer(name)),
    };

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in new[] { "qwen3", "llama3", "llama2" })
            for (int i = 0; i < Load(name).Cases.Count; i++) data.Add(name, i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RenderMatchesJinja(string template, int index)
    {
        var fixture = Load(template);
        var c = fixture.Cases[index];
        var messages = fixture.Conversations.Single(x => x.Name == c.Conversation).Messages
            .Select(m => new ChatMessage(m.Role, m.Content, m.ReasoningContent)).ToList();
        var chat = TemplateFor(template);
        if (c.Error is not null)
        {
            var e = Assert.Throws<HiciException>(() => chat.Render(messages, c.AddGenerationPrompt, c.EnableThinking));
            Assert.Contains(c.Error, e.Message);
            return;
        }
        Assert.Equal(c.Text, chat.Render(messages, c.AddGenerationPrompt, c.EnableThinking));
    }

    [Theory]
    [InlineData("qwen3", ChatTemplateKind.Qwen3)]
    [InlineData("llama3", ChatTemplateKind.Llama3)]
    public void ConfigTemplatesAreIdentified(string tokenizer, ChatTemplateKind kind) =>
        Assert.Equal(kind, ChatTemplate.For(TestData.Tokenizer(tokenizer)).Kind);

    /// <summary>Mistral-7B v0.1 (the "llama2" package) ships no chat_template: asking for one is a
    /// clear error naming the config file, not a guess.</summary>
    [Fact]
    public void MistralBaseHasNoTemplate()
    {
        var reference = JsonDocument.Parse(File.ReadAllText(TestData.Fixture("chat_templates", "mistral.expected.json")));
        Assert.False(reference.RootElement.GetProperty("has_chat_template").GetBoolean());
        var tok = TestData.Tokenizer("llama2");
        Assert.Null(tok.ChatTemplate);
        var e = Assert.Throws<HiciException>(() => ChatTemplate.For(tok));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("no chat_template", e.Message);
    }

    [Fact]
    public void UnknownTemplateTextIsNotIdentified() =>
        Assert.Null(ChatTemplate.Identify("{{ messages[0]['content'] }}"));
}
