using System.Text;

namespace Hici.Evaluation;

/// <summary>One passkey trial: the prompt of a target length built with one seed.</summary>
/// <param name="Target">the test length in tokens the garbage is sized for (a multiple of the interval)</param>
/// <param name="NPrefix">characters of filler before the pass-key line</param>
public sealed record PasskeyTrial(int Target, int Seed, int PassKey, int NPrefix, string Prompt);

/// <summary>
/// The passkey prompt of LongLoRA's <c>passkey_retrieval.py → generate_prompt_landmark</c>, bit for bit:
/// <c>n_garbage = int(3.75·target // 1024 · 1024)</c> filler characters, NumPy's global generator seeded with
/// the trial index, <c>n_prefix = randint(0, n_garbage)</c> then <c>pass_key = randint(1, 50000)</c>; prefix and
/// suffix are both cut from the start of the repeated filler; five parts joined by "\n".
/// </summary>
public static class PasskeyPrompts
{
    public const string Task = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.";
    public const string Garbage = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
    public const string Question = "What is the pass key? The pass key is";
    /// <summary>The reference joins 50 000 copies; longer fillers would fail its assert.</summary>
    public const int GarbageCopies = 50000;
    public static readonly long MaxGarbageChars = (long)GarbageCopies * (Garbage.Length + 1) - 1;

    /// <summary><c>int(3.75 * target // 1024 * 1024)</c> — float floor division, as Python computes it.</summary>
    public static int GarbageChars(int target) => (int)(Math.Floor(3.75 * target / 1024.0) * 1024.0);

    /// <summary>The trial lengths of a run: (i+1)·interval for i in range(max_tokens // interval).</summary>
    public static IEnumerable<int> Targets(int maxTokens, int interval)
    {
        if (interval <= 0) throw new HiciException($"--interval must be positive (got {interval})");
        if (maxTokens < interval) throw new HiciException($"--max-tokens {maxTokens} is below --interval {interval}: no test length");
        for (int i = 0; i < maxTokens / interval; i++) yield return (i + 1) * interval;
    }

    public static PasskeyTrial Build(int target, int seed)
    {
        if (seed < 0) throw new ArgumentOutOfRangeException(nameof(seed));
        int nGarbage = GarbageChars(target);
        if (nGarbage <= 0) throw new HiciException($"passkey length {target}: gives {nGarbage} filler characters; use lengths of at least 274 tokens");
        if (nGarbage > MaxGarbageChars) throw new HiciException($"passkey length {target}: needs {nGarbage} filler characters, more than the reference's {MaxGarbageChars}");
        var rng = new NumpyRandomState((uint)seed);
        int nPrefix = (int)rng.RandInt(0, nGarbage);
        int nSuffix = nGarbage - nPrefix;
        int key = (int)rng.RandInt(1, 50000);
        var sb = new StringBuilder(nGarbage + 400);
        sb.Append(Task).Append('\n');
        AppendFiller(sb, nPrefix);
        sb.Append('\n').Append($"The pass key is {key}. Remember it. {key} is the pass key.").Append('\n');
        AppendFiller(sb, nSuffix);
        sb.Append('\n').Append(Question);
        return new PasskeyTrial(target, seed, key, nPrefix, sb.ToString());
    }

    public static IEnumerable<PasskeyTrial> All(int maxTokens, int interval, int numTests)
    {
        if (numTests <= 0) throw new HiciException($"--num-tests must be positive (got {numTests})");
        foreach (int t in Targets(maxTokens, interval))
            for (int s = 0; s < numTests; s++) yield return Build(t, s);
    }

    /// <summary>The first <paramref name="n"/> characters of <c>" ".join([garbage] * 50000)</c>.</summary>
    private static void AppendFiller(StringBuilder sb, int n)
    {
        while (n > 0)
        {
            int take = Math.Min(n, Garbage.Length);
            sb.Append(Garbage, 0, take);
            n -= take;
            if (n > 0) { sb.Append(' '); n--; }
        }
    }
}
