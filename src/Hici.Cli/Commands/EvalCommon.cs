using System.CommandLine;
using Hici.Evaluation;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using Hici.Text;

namespace Hici.Cli.Commands;

/// <summary>The model options every model-running `hici eval` task shares, and how they load a model.</summary>
internal static class EvalCommon
{
    public static readonly Option<string> Model = new("--model") { Description = "HF model folder (config.json + safetensors; tokenizer.json for the text tasks)" };
    public static readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "Tokenizer folder (default: the model folder)" };
    public static readonly Option<string?> Out = new("--out") { Description = "Result file (JSON); partial results go to FILE.partial.jsonl until it is written" };

    /// <summary>--model, --trainable, --adapter, --strict, the HiCI flags and --dtype/--threads/--device.</summary>
    public static void AddModelOptions(Command cmd, bool tokenizer)
    {
        cmd.Options.Add(Model);
        if (tokenizer) cmd.Options.Add(Tokenizer);
        cmd.Options.Add(ScoreCommand.Trainable);
        cmd.Options.Add(ScoreCommand.Adapter);
        cmd.Options.Add(ScoreCommand.Strict);
        HiciOptions.AddTo(cmd);
        Common.AddComputeOptions(cmd);
    }

    /// <summary>Loads the model the options name; <paramref name="edit"/> adjusts the config (RoPE scaling).</summary>
    public static LoadedModel Load(ParseResult pr, Func<ModelConfig, ModelConfig>? edit = null, bool quiet = false)
    {
        string dir = pr.GetValue(Model) ?? throw new HiciException("--model DIR is required");
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such model folder");
        var tr = pr.GetValue(ScoreCommand.Trainable) is { } tp ? TrainableParams.Open(tp) : null;
        try
        {
            var hc = HiciOptions.Resolve(pr, dir, always: tr?.HasHici == true);
            hc?.ValidateFor(HfConfigReader.Read(dir).HiddenSize, "HiCI flags");
            string? adapterDir = pr.GetValue(ScoreCommand.Adapter);
            if (adapterDir is not null && !Directory.Exists(adapterDir)) throw new HiciException($"{adapterDir}: no such adapter folder");
            Common.InitTorch(pr);
            var loaded = HiciModelLoader.Load(new ModelLoadRequest(dir)
            {
                DType = Common.ParseDtype(pr.GetValue(Common.Dtype)!),
                Device = Common.ParseDevice(pr.GetValue(Common.Device)!),
                Attention = HiciOptions.AttentionKind(pr),
                Hici = hc, Trainable = tr, AdapterDir = adapterDir, Strict = pr.GetValue(ScoreCommand.Strict),
                EditConfig = edit,
            });
            if (!quiet) foreach (var line in loaded.ReportLines()) Console.Error.WriteLine(line);
            return loaded;
        }
        finally { tr?.Dispose(); }
    }

    public static HfTokenizer LoadTokenizer(ParseResult pr)
    {
        string path = pr.GetValue(Tokenizer) ?? pr.GetValue(Model) ?? throw new HiciException("--model DIR is required");
        if (Directory.Exists(path) && !File.Exists(Path.Combine(path, "tokenizer.json")))
            throw new HiciException($"{path}: no tokenizer.json (pass --tokenizer DIR)");
        return HfTokenizer.Load(path);
    }

    /// <summary>A loaded model as the generation tasks see it; disposing it frees the model.</summary>
    public sealed class OwnedEvalModel(LoadedModel loaded, HfTokenizer tok) : IEvalModel, IDisposable
    {
        private readonly CausalLMEvalModel _m = new(loaded.Model, tok);
        public int[] Encode(string text, bool addSpecialTokens) => _m.Encode(text, addSpecialTokens);
        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens) => _m.Decode(ids, skipSpecialTokens);
        public long[] Greedy(IReadOnlyList<long> prompt, int maxNewTokens, IReadOnlyCollection<long> eos) => _m.Greedy(prompt, maxNewTokens, eos);
        public IReadOnlyList<long> EosIds => _m.EosIds;
        public long VocabSize => _m.VocabSize;
        public void Dispose() => loaded.Dispose();
    }

    /// <summary>--out is checked before the model loads, so a typo does not cost a whole run.</summary>
    public static string CheckOut(string? path, string fallback)
    {
        path ??= fallback;
        ScoreCommand.CheckOutPath(path);
        return path;
    }

    public static string PartialPath(string outPath) => outPath + ".partial.jsonl";

    public static RopeScaling Linear(double factor) => new("linear", factor);
}
