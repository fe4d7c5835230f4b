using Hici.Text;

namespace Hici.Training;

public enum SftFormat { Llama2, Qwen3 }

/// <summary>One tokenized SFT example: ids and labels of the same length (prompt positions −100).</summary>
public sealed record SftExample(long[] Ids, long[] Labels);

/// <summary>
/// LongAlpaca-format SFT data (a JSON array of {"instruction", "input"?, "output"}) turned into training
/// examples with the loss on the response only.
/// Llama-2 (fine-tune_hici_sft.py → SupervisedDataset, PROMPT_DICT): source "[INST]{instruction}[/INST]", or with
/// a non-empty input the [INST] &lt;&lt;SYS&gt;&gt; template; target "{output}" + the EOS string; the example
/// source + target is tokenized with BOS, right-truncated to the model length, and the first len(tokenize(source))
/// labels (BOS included) are −100.
/// Qwen3: the ChatML rendering of [user: instruction (+ input), assistant: output] as the Qwen3 template renders
/// a final assistant turn (empty think block), the loss on the answer and its &lt;|im_end|&gt;.
/// An example whose prompt fills the whole length has nothing to learn from (the reference's NaN micro-batch):
/// it is skipped and counted.
/// </summary>
public static class SftData
{
    public const string Llama2System = "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe.  Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal content. Please ensure that your responses are socially unbiased and positive in nature.\n\nIf a question does not make any sense, or is not factually coherent, explain why instead of answering something not correct. If you don't know the answer to a question, please don't share false information.";

    public static SftFormat ParseFormat(string s) => s.ToLowerInvariant() switch
    {
        "llama2" => SftFormat.Llama2,
        "qwen3" or "chatml" => SftFormat.Qwen3,
        _ => throw new HiciException($"--format: '{s}' is not supported (llama2 or qwen3)"),
    };

    /// <summary>(prompt, response) strings of one example in <paramref name="format"/>.</summary>
    public static (string Source, string Target) Render(AlpacaExample ex, SftFormat format, HfTokenizer tok) => format switch
    {
        SftFormat.Llama2 => (string.IsNullOrEmpty(ex.Input)
                ? $"[INST]{ex.Instruction}[/INST]"
                : $"[INST] <<SYS>>\n{Llama2System}\n<</SYS>> \n\n {ex.Instruction} \n{ex.Input} [/INST]",
            ex.Output + (tok.EosToken ?? throw new HiciException("the tokenizer has no EOS token to end the response with"))),
        SftFormat.Qwen3 => ($"<|im_start|>user\n{ex.Instruction}{(string.IsNullOrEmpty(ex.Input) ? "" : "\n" + ex.Input)}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
            ex.Output + "<|im_end|>\n"),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    public static SftExample? Tokenize(AlpacaExample ex, SftFormat format, HfTokenizer tok, int maxLength)
    {
        var (source, target) = Render(ex, format, tok);
        var all = tok.Encode(source + target);
        int promptLen = tok.Encode(source).Length;
        int n = Math.Min(all.Length, maxLength);
        if (promptLen >= n) return null;
        var ids = new long[n];
        var labels = new long[n];
        for (int i = 0; i < n; i++) { ids[i] = all[i]; labels[i] = i < promptLen ? CausalLoss.IgnoreIndex : all[i]; }
        return new SftExample(ids, labels);
    }

    public static (List<SftExample> Examples, int Skipped) Load(string path, SftFormat format, HfTokenizer tok, int maxLength, Action<int>? progress = null)
    {
        Hici.IO.InputFiles.CheckRegularFile(path);
        using var fs = File.OpenRead(path);
        var list = new List<SftExample>();
        int skipped = 0;
        foreach (var ex in AlpacaExamples.Stream(fs, path))
        {
            if (Tokenize(ex, format, tok, maxLength) is { } e) list.Add(e); else skipped++;
            progress?.Invoke(list.Count + skipped);
        }
        if (list.Count == 0) throw new HiciException($"{path}: no example has a response within --model-max-length {maxLength}");
        return (list, skipped);
    }
}

/// <summary>SFT micro-batches: one example each (lengths differ; no padding), in a seeded order redrawn each epoch.</summary>
public sealed class SftBatches(IReadOnlyList<SftExample> examples, long seed) : IBatchSource
{
    private long[] _order = Array.Empty<long>();
    private long _orderEpoch = -1;

    public SamplerState State { get; private set; } = new(0, 0);

    public void Restore(SamplerState s)
    {
        if (s.Epoch < 0 || s.Cursor < 0 || s.Cursor > examples.Count) throw new HiciException($"data position epoch {s.Epoch}, example {s.Cursor} does not fit {examples.Count} examples");
        State = s;
    }

    public Batch Next(int rows)
    {
        if (rows != 1) throw new HiciException("sft trains one example per micro-batch (--batch-size 1; use --grad-accum for more per step)");
        if (State.Cursor >= examples.Count) State = new SamplerState(State.Epoch + 1, 0);
        if (_orderEpoch != State.Epoch)
        {
            var rng = new Random(unchecked((int)(seed * 1_000_003 + State.Epoch)));
            _order = Enumerable.Range(0, examples.Count).Select(i => (long)i).ToArray();
            rng.Shuffle(_order);
            _orderEpoch = State.Epoch;
        }
        var e = examples[(int)_order[State.Cursor]];
        State = State with { Cursor = State.Cursor + 1 };
        return new Batch(e.Ids, e.Labels, 1, e.Ids.Length);
    }
}
