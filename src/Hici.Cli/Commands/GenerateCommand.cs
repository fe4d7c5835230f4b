using System.CommandLine;
using Hici.Runtime;
using System.Text.Json;
using Hici.Generation;
using Hici.IO;
using Hici.Loading;
using Hici.Models;
using Hici.Text;

namespace Hici.Cli.Commands;

/// <summary><c>hici generate</c>: prompt → streamed continuation (prefill + cached decode), with any model the loader loads.</summary>
public static class GenerateCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors; tokenizer.json too unless --tokenizer or --ids)", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder or tokenizer.json (default: the model folder)" };
        var prompt = new Option<string?>("--prompt") { Description = "The prompt text (with --chat: the user message)" };
        var idsFile = new Option<string?>("--ids") { Description = "JSON file holding the prompt as an array of token ids (instead of --prompt; needs no tokenizer)" };
        var outFile = new Option<string?>("--out") { Description = "Write {\"prompt_ids\": [...], \"ids\": [...generated], \"text\": ...} here (text null without a tokenizer)" };
        var chat = new Option<bool>("--chat") { Description = "Wrap the prompt in the tokenizer's chat template (Llama-2, Llama-3 or Qwen3)" };
        var template = new Option<string?>("--chat-template") { Description = "Use this template instead of the one tokenizer_config.json names: llama2 | llama3 | qwen3" };
        var system = new Option<string?>("--system") { Description = "System message (with --chat)" };
        var thinking = new Option<bool?>("--thinking") { Description = "Qwen3 chat: true|false (false adds the empty think block); default: the template's (on)" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Upper bound on generated tokens", DefaultValueFactory = _ => 128 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy (default); > 0 samples", DefaultValueFactory = _ => 0.0 };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (0 = off)", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Keep the smallest set reaching probability p (1 = off)", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long?>("--seed") { Description = "Random seed for sampling (default: random)" };
        var stop = new Option<string[]>("--stop") { Description = "Stop when this text appears (repeatable); it is not printed", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("generate", "Generate text from a prompt, streamed to the console (stops on EOS ids and stop strings)");
        foreach (var o in new Option[] { model, tokenizer, prompt, idsFile, outFile, chat, template, system, thinking, maxNew, temperature, topK, topP, seed, stop }) cmd.Options.Add(o);
        ModelOptions.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(model)!;
            string? text = pr.GetValue(prompt), idsPath = pr.GetValue(idsFile);
            if ((text is null) == (idsPath is null)) throw new HiciException("generate: give exactly one of --prompt TEXT or --ids FILE.json");
            bool useChat = pr.GetValue(chat);
            if (useChat && idsPath is not null) throw new HiciException("--chat goes with --prompt, not --ids");
            if (!useChat && (pr.GetValue(system) is not null || pr.GetValue(thinking) is not null || pr.GetValue(template) is not null))
                throw new HiciException("--system, --thinking and --chat-template need --chat");
            var sampling = new SamplingOptions { Temperature = pr.GetValue(temperature), TopK = pr.GetValue(topK), TopP = pr.GetValue(topP), Seed = pr.GetValue(seed) };
            sampling.Validate();
            int maxNewTokens = pr.GetValue(maxNew);
            if (maxNewTokens <= 0) throw new HiciException($"--max-new-tokens must be positive (got {maxNewTokens})");
            if (pr.GetValue(stop) is { Length: > 0 } && idsPath is not null && pr.GetValue(tokenizer) is null && !HasTokenizer(dir))
                throw new HiciException("--stop needs a tokenizer to decode the output (pass --tokenizer DIR)");
            if (pr.GetValue(outFile) is { } outPath) AtomicFile.CheckTarget(outPath, "--out");

            var request = ModelOptions.Request(pr, dir);
            var plan = ModelLoader.Plan(request);
            // --ids needs no tokenizer; with one at hand the output is decoded too
            string tokPath = pr.GetValue(tokenizer) ?? dir;
            HfTokenizer? tok = idsPath is null || pr.GetValue(tokenizer) is not null || HasTokenizer(dir)
                ? TokenInput.LoadTokenizer(tokPath, plan.VocabSize) : null;
            long[] ids = idsPath is not null
                ? TokenInput.ReadIds(idsPath, plan.VocabSize, minCount: 1, purpose: "as a prompt")
                : TokenInput.Encode(tok!, useChat ? RenderChat(pr, tok!, text!, template, system, thinking) : text!, addSpecialTokens: !useChat);
            // (a rendered chat template already holds BOS where the model expects it)
            if (ids.Length == 0) throw new HiciException("the prompt encodes to no tokens");

            if (plan.Config is { } cfg) CheckCacheFits(cfg, request.DType, ids.Length, maxNewTokens, MemoryEstimate.Available, pr.GetValue(Common.Force));
            if (plan.MaxPositionEmbeddings is { } maxPos && (long)ids.Length + maxNewTokens > maxPos)
                Console.Error.WriteLine($"note: {ids.Length} prompt + {maxNewTokens} new tokens can pass max_position_embeddings {maxPos}" +
                                        (plan.Config?.RopeScaling is not { } rs ? "; the model was not trained for such positions (no rope_scaling)" : $" (rope_scaling {rs.Type} ×{rs.Factor})"));
            var (attention, _) = plan.DescribeAttention(ids.Length);   // the prefill runs this; also checks the segment rule
            Common.InitTorch(pr);
            using var loaded = ModelLoader.Load(request);
            foreach (var line in loaded.ReportLines()) Console.Error.WriteLine(line);
            Console.Error.WriteLine($"attention   {attention} (prefill; decode steps attend to the cached tokens)");
            var eos = new HashSet<long>(plan.EosTokenIds.Select(i => (long)i));
            if (tok is not null) foreach (var e in tok.EosIds) eos.Add(e);
            var opts = new GenerationOptions
            {
                MaxNewTokens = maxNewTokens,
                Sampling = sampling,
                EosTokenIds = eos,
                StopStrings = pr.GetValue(stop) ?? Array.Empty<string>(),
                Decode = tok is null ? null : gen => tok.Decode(gen.Select(i => (int)i).ToArray(), skipSpecialTokens: true, cleanUpTokenizationSpaces: false),
            };
            var output = pr.InvocationConfiguration.Output;
            var result = new GenerationPipeline(loaded.Model).Generate(ids, opts, step => { output.Write(step.TextDelta); output.Flush(); });
            if (tok is null) output.Write(JsonSerializer.Serialize(result.Tokens));   // nothing to decode with: the ids
            output.WriteLine();
            if (pr.GetValue(outFile) is { } o) WriteResult(o, ids, result);
            Console.Error.WriteLine($"[{ids.Length} prompt tokens, {result.Tokens.Length} generated, stop: {Reason(result.Reason)}, " +
                                    $"prefill {result.Prefill.TotalMilliseconds:F0} ms, decode {result.TokensPerSecond:F1} tokens/s]");
            return 0;
        }));
        return cmd;
    }

    private static bool HasTokenizer(string dir) => File.Exists(Path.Combine(dir, "tokenizer.json"));

    private static string RenderChat(ParseResult pr, HfTokenizer tok, string user, Option<string?> template, Option<string?> system, Option<bool?> thinking)
    {
        var tpl = pr.GetValue(template) is { } k ? ChatTemplate.Create(ParseKind(k), tok.BosToken, tok.EosToken) : ChatTemplate.For(tok);
        var msgs = new List<ChatMessage>();
        if (pr.GetValue(system) is { } s) msgs.Add(ChatMessage.System(s));
        msgs.Add(ChatMessage.User(user));
        return tpl.Render(msgs, addGenerationPrompt: true, enableThinking: pr.GetValue(thinking));
    }

    /// <summary>Written to a temp file and renamed: an interrupted run leaves the old file or none.</summary>
    private static void WriteResult(string path, long[] prompt, GenerationResult r) => AtomicFile.Write(path, stream =>
    {
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteStartArray("prompt_ids");
        foreach (var id in prompt) w.WriteNumberValue(id);
        w.WriteEndArray();
        w.WriteStartArray("ids");
        foreach (var id in r.Tokens) w.WriteNumberValue(id);
        w.WriteEndArray();
        if (r.Text is null) w.WriteNull("text"); else w.WriteString("text", r.Text);
        w.WriteString("stop", Reason(r.Reason));
        w.WriteEndObject();
    });

    /// <summary>
    /// The KV cache is preallocated for prompt + --max-new-tokens positions, so a huge bound would allocate (or be
    /// killed allocating) before the first token; refuse it while it is still a flag the user can change.
    /// </summary>
    public static void CheckCacheFits(ModelConfig cfg, TorchSharp.torch.ScalarType dtype, int promptTokens, int maxNew, long memoryBytes, bool force = false)
    {
        long positions = (long)promptTokens + maxNew;
        if (positions > int.MaxValue)
            throw new HiciException($"--max-new-tokens {maxNew}: prompt ({promptTokens} tokens) + max new tokens exceeds {int.MaxValue} positions");
        MemoryEstimator.Generate(cfg, dtype, promptTokens, maxNew).EnsureFits(memoryBytes, force, $"--max-new-tokens {maxNew}", "lower it");
    }

    static string Reason(StopReason r) => r switch { StopReason.Eos => "eos", StopReason.StopString => "stop string", _ => "max tokens" };

    static ChatTemplateKind ParseKind(string s) => s.ToLowerInvariant() switch
    {
        "llama2" or "llama-2" => ChatTemplateKind.Llama2,
        "llama3" or "llama-3" => ChatTemplateKind.Llama3,
        "qwen3" or "chatml" => ChatTemplateKind.Qwen3,
        _ => throw new HiciException($"--chat-template: '{s}' is not one of llama2, llama3, qwen3"),
    };
}
