using System.Globalization;
using Hici.Fuzz;

// hici fuzz harness. Supervisor (default): runs --iterations cases in a watched worker process and prints the table.
// --worker: runs cases and reports each on stdout (used by the supervisor). --replay N: runs case N here and says why.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

var a = args.ToList();
string? Get(string name) => a.IndexOf(name) is var i and >= 0 && i + 1 < a.Count ? a[i + 1] : null;
int GetInt(string name, int d) => Get(name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : d;

if (a.Contains("--help") || a.Contains("-h"))
{
    Console.WriteLine("""
        Hici.Fuzz [--root REPO] [--iterations N (3000)] [--seed S (1)] [--start I (0)] [--time-limit SEC (20)] [--memory-limit-mb MB (4096)]
                  [--heap-limit-mb MB (2048)] [--process-share F (0.01)] [--report FILE.md] [--replay N] [--kinds K,K,…]
        Mutates safetensors, config.json, tokenizer.json, trainable_params.bin, PEFT adapters, --ids JSON, text, flags, token files
        (.bin + .bin.json), training checkpoints for --resume, hici_config.json and evaluation JSONL (LongBench, LongEval, partial logs),
        runs them through the library loaders and the hici command tree, and counts clean errors, successes, internal
        faults, hangs and memory runaways. Exit 1 when any fault, hang or runaway was seen.
        """);
    return 0;
}

var seeds = new Seeds(Get("--root") ?? Seeds.FindRoot());
int seed = GetInt("--seed", 1);
string[] Kinds()
{
    if (Get("--kinds") is not { } k) return Cases.AllKinds;
    var list = k.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    foreach (var x in list)
        if (!Cases.AllKinds.Contains(x)) throw new ArgumentException($"--kinds: unknown kind '{x}' (known: {string.Join(", ", Cases.AllKinds)})");
    return list;
}

if (a.Contains("--worker"))
{
    var cases = new Cases(seeds, Get("--scratch")!, double.Parse(Get("--process-share") ?? "0", CultureInfo.InvariantCulture), Kinds());
    int start = GetInt("--start", 0), n = GetInt("--iterations", 1);
    var stdout = Console.Out;
    for (int i = start; i < start + n; i++)
    {
        stdout.WriteLine($"@@START {i}");
        stdout.Flush();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var cpu = Environment.CpuUsage.TotalTime;
        var r = cases.Run(seed, i);
        var cpuMs = (Environment.CpuUsage.TotalTime - cpu).TotalMilliseconds;
        stdout.WriteLine($"@@DONE {r.Case}\t{r.Kind}\t{r.Target}\t{r.Verdict}\t{sw.Elapsed.TotalMilliseconds:F1}\t{cpuMs:F1}\t{cases.SetupMilliseconds:F1}\t{r.Detail.Replace('\t', ' ')}");
        stdout.Flush();
        if (i % 200 == 199) GC.Collect();
    }
    return 0;
}

if (Get("--replay") is { } replay)
{
    var scratch = Path.Combine(Path.GetTempPath(), $"hici-fuzz-replay-{Environment.ProcessId}");
    var cases = new Cases(seeds, scratch, 0, Kinds());
    Environment.CurrentDirectory = scratch;   // relative paths among the fuzzed flags land in the scratch folder
    var r = cases.Run(seed, int.Parse(replay, CultureInfo.InvariantCulture));
    Console.WriteLine($"case {r.Case}: {r.Kind}/{r.Target}: {r.Verdict} {r.Detail}");
    if (r.Target != "library") Console.WriteLine("hici " + string.Join(' ', cases.LastArgs.Select(x => x.Length > 80 ? x[..77] + "..." : x)));
    Console.WriteLine($"(inputs left in {scratch}/case)");
    return r.Verdict is Verdict.Clean or Verdict.Success ? 0 : 1;
}

return new Supervisor(new FuzzOptions
{
    Iterations = GetInt("--iterations", 3000),
    Seed = seed,
    Start = GetInt("--start", 0),
    CaseTimeLimit = TimeSpan.FromSeconds(GetInt("--time-limit", 20)),
    MemoryLimitBytes = (long)GetInt("--memory-limit-mb", 4096) << 20,
    HeapLimitBytes = (long)GetInt("--heap-limit-mb", 2048) << 20,
    ProcessShare = double.Parse(Get("--process-share") ?? "0.01", CultureInfo.InvariantCulture),
    ReportPath = Get("--report"),
    Kinds = Kinds(),
    Root = Get("--root"),
}).Run();
