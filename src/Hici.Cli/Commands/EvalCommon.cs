using System.CommandLine;
using Hici.Evaluation;
using Hici.IO;
using Hici.Loading;
using Hici.Models;
using Hici.Text;

namespace Hici.Cli.Commands;

/// <summary>The model options every model-running `hici eval` task shares, and how they load a model.</summary>
internal static class EvalCommon
{
    public static readonly Option<string> Model = new("--model") { Description = "HF model folder (config.json + safetensors; tokenizer.json for the text tasks)" };
    public static readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "Tokenizer folder (default: the model folder)" };
    public static readonly Option<string?> Out = new("--out") { Description = "Result file (JSON); partial results go to FILE.partial.jsonl until it is written" };

    /// <summary>--model, --trainable, --adapter, --strict, the attention flags and --dtype/--threads/--device.</summary>
    public static void AddModelOptions(Command cmd, bool tokenizer)
    {
        cmd.Options.Add(Model);
        if (tokenizer) cmd.Options.Add(Tokenizer);
        ModelOptions.AddTo(cmd);
    }

    /// <summary>The load request the options describe; <paramref name="rope"/> replaces the config's RoPE scaling.</summary>
    public static ModelLoadRequest Request(ParseResult pr, RopeScaling? rope = null)
    {
        string dir = pr.GetValue(Model) ?? throw new HiciException("--model DIR is required");
        return ModelOptions.Request(pr, dir) with { RopeScaling = rope };
    }

    /// <summary>Loads the model the options name (load report on stderr unless <paramref name="quiet"/>).</summary>
    public static LoadedModel Load(ParseResult pr, RopeScaling? rope = null, bool quiet = false)
    {
        var request = Request(pr, rope);
        Common.InitTorch(pr);
        var loaded = ModelLoader.Load(request);
        if (!quiet) foreach (var line in loaded.ReportLines()) Console.Error.WriteLine(line);
        return loaded;
    }

    /// <summary>--tokenizer (default the model folder), checked to fit the vocabulary the model will have.</summary>
    public static HfTokenizer LoadTokenizer(ParseResult pr)
    {
        string path = pr.GetValue(Tokenizer) ?? pr.GetValue(Model) ?? throw new HiciException("--model DIR is required");
        return TokenInput.LoadTokenizer(path, ModelLoader.Plan(Request(pr)).VocabSize, instead: "(pass --tokenizer DIR)");
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
        AtomicFile.CheckTarget(path, "--out");
        return path;
    }

    public static string PartialPath(string outPath) => outPath + ".partial.jsonl";

}
