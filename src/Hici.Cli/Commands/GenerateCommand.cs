using System.CommandLine;
using Hici.Runtime;
using Hici.Generation;
using Hici.IO;
using Hici.Models;
using Hici.Text;

namespace Hici.Cli.Commands;

/// <summary><c>hici generate</c>: prompt → streamed continuation (prefill + cached decode).</summary>
public static class GenerateCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors; tokenizer.json too unless --tokenizer)", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder or tokenizer.json (default: the model folder)" };
        var prompt = new Option<string>("--prompt") { Description = "The prompt text (with --chat: the user message)", Required = true };
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
        foreach (var o in new Option[] { model, tokenizer, prompt, chat, template, system, thinking, maxNew, temperature, topK, topP, seed, stop }) cmd.Options.Add(o);
        Common.AddComputeOptions(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(model)!;
            if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such model folder");
            bool useChat = pr.GetValue(chat);
            if (!useChat && (pr.GetValue(system) is not null || pr.GetValue(thinking) is not null || pr.GetValue(template) is not null))
                throw new HiciException("--system, --thinking and --chat-template need --chat");
            var sampling = new SamplingOptions { Temperature = pr.GetValue(temperature), TopK = pr.GetValue(topK), TopP = pr.GetValue(topP), Seed = pr.GetValue(seed) };
            sampling.Validate();
            if (pr.GetValue(maxNew) <= 0) throw new HiciException($"--max-new-tokens must be positive (got {pr.GetValue(maxNew)})");

            var cfg = HfConfigReader.Read(dir);
            var tok = HfTokenizer.Load(pr.GetValue(tokenizer) ?? dir);
            if (tok.VocabSize > cfg.VocabSize)
                throw new HiciException($"the tokenizer has {tok.VocabSize} ids but the model's vocabulary is {cfg.VocabSize}: they do not belong together");

            string text = pr.GetValue(prompt)!;
            bool addSpecial = true;
            if (useChat)
            {
                var tpl = pr.GetValue(template) is { } k
                    ? ChatTemplate.Create(ParseKind(k), tok.BosToken, tok.EosToken)
                    : ChatTemplate.For(tok);
                var msgs = new List<ChatMessage>();
                if (pr.GetValue(system) is { } s) msgs.Add(ChatMessage.System(s));
                msgs.Add(ChatMessage.User(text));
                text = tpl.Render(msgs, addGenerationPrompt: true, enableThinking: pr.GetValue(thinking));
                addSpecial = false;   // the rendered template already holds BOS where the model expects it
            }
            var ids = tok.Encode(text, addSpecial).Select(i => (long)i).ToArray();
            if (ids.Length == 0) throw new HiciException("the prompt encodes to no tokens");

            var dtype = Common.ParseDtype(pr.GetValue(Common.Dtype)!);
            var device = Common.ParseDevice(pr.GetValue(Common.Device)!);
            CheckCacheFits(cfg, dtype, ids.Length, pr.GetValue(maxNew), MemoryEstimate.Available, pr.GetValue(Common.Force));
            if ((long)ids.Length + pr.GetValue(maxNew) > cfg.MaxPositionEmbeddings)
                Console.Error.WriteLine($"note: {ids.Length} prompt + {pr.GetValue(maxNew)} new tokens can pass max_position_embeddings {cfg.MaxPositionEmbeddings}" +
                                        (cfg.RopeScaling is null ? "; the model was not trained for such positions (no rope_scaling)" : $" (rope_scaling {cfg.RopeScaling.Type} ×{cfg.RopeScaling.Factor})"));
            Common.InitTorch(pr);
            using var lm = CausalLM.FromPretrained(dir, dtype, device);
            var eos = new HashSet<long>(tok.EosIds.Select(i => (long)i));
            foreach (var e in cfg.EosTokenIds) eos.Add(e);
            var opts = new GenerationOptions
            {
                MaxNewTokens = pr.GetValue(maxNew),
                Sampling = sampling,
                EosTokenIds = eos,
                StopStrings = pr.GetValue(stop) ?? Array.Empty<string>(),
                Decode = gen => tok.Decode(gen.Select(i => (int)i).ToArray(), skipSpecialTokens: true, cleanUpTokenizationSpaces: false),
            };
            var output = pr.InvocationConfiguration.Output;
            var result = new GenerationPipeline(lm).Generate(ids, opts, step => { output.Write(step.TextDelta); output.Flush(); });
            output.WriteLine();
            Console.Error.WriteLine($"[{ids.Length} prompt tokens, {result.Tokens.Length} generated, stop: {Reason(result.Reason)}, " +
                                    $"prefill {result.Prefill.TotalMilliseconds:F0} ms, decode {result.TokensPerSecond:F1} tokens/s]");
            return 0;
        }));
        return cmd;
    }

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
