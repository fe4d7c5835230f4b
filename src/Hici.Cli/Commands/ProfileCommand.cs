using System.CommandLine;
using System.Text.Json;
using Hici.DualChunk;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Loading;
using Hici.Models;
using Hici.Profiling;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Cli.Commands;

/// <summary>
/// <c>hici profile</c>: time and peak memory against context length for several attention implementations on
/// one model, after the reference's profile_efficiency.py (methods × lengths, warm-ups then timed passes,
/// mean time, throughput, peak memory, failures recorded as text) → a table, JSON and a PNG.
/// </summary>
public static class ProfileCommand
{
    /// <summary>Streaming HiCI (<see cref="HiciStreamScorer"/>): the HiCI model run one segment at a time.</summary>
    public const string StreamId = "stream";
    public static readonly string[] Methods = { FullAttention.Id, HiciImplementation.Id, DualChunkImplementation.Id, StreamId };

    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors)", Required = true };
        var methods = new Option<string>("--methods") { Description = $"Comma-separated attention implementations to profile: {string.Join(", ", Methods)}", DefaultValueFactory = _ => string.Join(",", Methods) };
        var lengths = new Option<string>("--lengths") { Description = "Comma-separated context lengths, run in increasing order while memory and --max-seconds allow", DefaultValueFactory = _ => "1024,2048,4096,8192,16384,32768" };
        var pass = new Option<string>("--pass") { Description = "forward (prefill, no gradients) | train (forward + backward of the next-token loss, every parameter, no optimizer step: the reference's setting)", DefaultValueFactory = _ => "forward" };
        var warmup = new Option<int>("--warmup") { Description = "Untimed passes before the timed ones", DefaultValueFactory = _ => 2 };
        var repeats = new Option<int>("--repeats") { Description = "Timed passes (the time is their mean)", DefaultValueFactory = _ => 3 };
        var maxSeconds = new Option<double>("--max-seconds") { Description = "Skip a length whose predicted warm-up + timed passes exceed this (the reference's per-run timeout)", DefaultValueFactory = _ => 1800 };
        var seed = new Option<long>("--seed") { Description = "Seed of the random token ids", DefaultValueFactory = _ => 0 };
        var json = new Option<string?>("--json") { Description = "Write the measurements as JSON here" };
        var png = new Option<string?>("--png") { Description = "Write a plot (time and peak memory against length) as PNG here" };
        var cmd = new Command("profile", "Time and peak memory against context length for full, hici, chunk and streaming HiCI attention");
        foreach (var o in new Option[] { model, methods, lengths, pass, warmup, repeats, maxSeconds, seed, json, png }) cmd.Options.Add(o);
        ModelOptions.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(model)!;
            if (pr.GetValue(ModelOptions.Attention) is not null) throw new HiciException("profile: choose the attention implementations with --methods, not --attention");
            var names = ParseList(pr.GetValue(methods)!, "--methods", s => s.ToLowerInvariant()).Distinct().ToArray();
            foreach (var n in names)
                if (!Methods.Contains(n)) throw new HiciException($"--methods: '{n}' is not supported (use {string.Join(", ", Methods)})");
            var ts = ParseList(pr.GetValue(lengths)!, "--lengths", s => int.TryParse(s, out int v) && v >= 2 ? v
                : throw new HiciException($"--lengths: '{s}' is not a length (an integer ≥ 2)")).Distinct().Order().ToArray();
            bool train = pr.GetValue(pass)!.ToLowerInvariant() switch
            {
                "forward" => false,
                "train" => true,
                var s => throw new HiciException($"--pass: '{s}' is not supported (use forward or train)"),
            };
            if (pr.GetValue(warmup) < 0 || pr.GetValue(repeats) < 1) throw new HiciException("--warmup must be ≥ 0 and --repeats ≥ 1");
            foreach (var o in new[] { json, png }) if (pr.GetValue(o) is { } path) AtomicFile.CheckTarget(path, o.Name);
            var settings = new ProfileSettings(pr.GetValue(warmup), pr.GetValue(repeats), train, pr.GetValue(seed));
            var requests = names.ToDictionary(n => n, n => ModelOptions.Request(pr, dir, Setting(pr, dir, n)));
            var baseRequest = requests[names[0]];
            foreach (var r in requests.Values) ModelLoader.Plan(r);                  // bad flags fail before any load
            Common.InitTorch(pr);

            var rows = new List<ProfileRow>();
            var notes = new List<string>();
            long? parameters = null;
            Progress.Run($"profiling {names.Length} × {ts.Length} runs", report =>
            {
                int done = 0;
                foreach (var name in names)
                {
                    using var loaded = ModelLoader.Load(requests[name]);
                    var lm = loaded.Transformer;
                    parameters ??= lm.parameters().Sum(p => p.numel());
                    if (name is HiciImplementation.Id or StreamId && RunHiciWithRandomMissing(loaded) is { } note) notes.Add($"{name}: {note}");
                    Func<CausalLM, Tensor, Tensor>? prefill = null;
                    if (name == StreamId)
                    {
                        var hc = HiciAttentionOptions.Of(lm.Config)!.Config;
                        notes.Add($"stream: {HiciConfig.CausalModeName(hc.CausalMode)}, segments of " +
                                  (hc.SegmentSize is { } fixedS ? $"{fixedS} tokens (--segment-size)" : $"int(T·{hc.SegmentRatio:G}) tokens (give --segment-size for memory that does not grow with T)"));
                        prefill = (m, ids) => HiciStreamScorer.LastLogits(m, ids[0].data<long>().ToArray());
                    }
                    string? stop = null;
                    foreach (int t in ts)
                    {
                        report?.Invoke(done++, names.Length * ts.Length);
                        string? skip = stop ?? Skip(rows.Where(r => r.Method == name).ToList(), t, settings, pr.GetValue(maxSeconds));
                        if (skip is not null) { rows.Add(new ProfileRow(name, t, Array.Empty<double>(), null, null, skip)); continue; }
                        var row = Profiler.Run(lm, name, t, settings, prefill);
                        rows.Add(row);
                        if (row.Error is not null) stop = $"skipped: failed at {t}";
                    }
                }
                return 0;
            });
            var meta = new ProfileMeta(dir, baseRequest.DType.ToString().ToLowerInvariant(), torch.get_num_threads(), train ? "train" : "forward",
                settings.Warmup, settings.Repeats, parameters ?? 0, notes);
            PrintTable(meta, rows);
            if (pr.GetValue(json) is { } jsonPath) WriteJson(jsonPath, meta, rows);
            if (pr.GetValue(png) is { } pngPath) ProfilePlot.Write(pngPath, rows, $"{Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/'))}: {meta.Pass}, {meta.DType}, {meta.Threads} threads");
            return 0;
        }));
        return cmd;
    }

    private static T[] ParseList<T>(string s, string option, Func<string, T> parse)
    {
        var items = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0) throw new HiciException($"{option}: give at least one value");
        return items.Select(parse).ToArray();
    }

    /// <summary>The attention setting of one method, built from the same flags as every other command.</summary>
    private static AttentionSetting Setting(ParseResult pr, string dir, string method) => method switch
    {
        HiciImplementation.Id => HiciAttentionOptions.Setting(HiciFlags.Resolve(pr, dir, always: true)!, run: false),   // run switched on after loading
        // streaming needs a shift mode: the given one if it is one, else causal_shift
        StreamId => HiciAttentionOptions.Setting(StreamConfig(HiciFlags.Resolve(pr, dir, always: true)!), run: false),
        DualChunkImplementation.Id => DualChunkImplementation.Setting(DualChunkFlags.Resolve(pr)),
        _ => AttentionSetting.Full,
    };

    private static HiciConfig StreamConfig(HiciConfig c) =>
        c.CausalMode is HiciCausalMode.CausalShift or HiciCausalMode.CausalShiftG ? c : c with { CausalMode = HiciCausalMode.CausalShift };

    /// <summary>
    /// Switches HiCI on in a model loaded with its modules held. HiCI tensors that no checkpoint held are
    /// drawn at random (N(0, 0.02²)): the timing is that of HiCI, the outputs mean nothing. Returns a note then.
    /// </summary>
    private static string? RunHiciWithRandomMissing(LoadedModel loaded)
    {
        var lm = loaded.Transformer;
        var fromOverlay = new HashSet<string>(loaded.Trainable?.Loaded ?? Array.Empty<string>(), StringComparer.Ordinal);
        var missing = loaded.Base.ZeroFilled.Where(k => !fromOverlay.Contains(k)).ToHashSet(StringComparer.Ordinal);
        using (torch.no_grad())
        {
            using var gen = new Generator();
            gen.manual_seed(0);
            foreach (var (path, p) in lm.named_parameters())
                if (missing.Contains(WeightMap.ToHf(path) ?? path)) p.copy_(torch.normal(0.0, 0.02, p.shape, generator: gen));
        }
        foreach (var layer in lm.model.layers) if (layer.self_attn is HiciAttention h) h.RunHici = true;
        return missing.Count == 0 ? null : $"{missing.Count} HiCI tensors are in no checkpoint of {lm.Config.ModelType}; they were drawn at random — timing only";
    }

    /// <summary>Why a run is skipped before it starts (predicted time or memory beyond what is allowed), or null.</summary>
    private static string? Skip(IReadOnlyList<ProfileRow> done, int t, ProfileSettings s, double maxSeconds)
    {
        var (seconds, bytes) = Profiler.Predict(done, t);
        if (seconds is { } sec && sec * (s.Warmup + s.Repeats) > maxSeconds)
            return $"skipped: predicted {sec * (s.Warmup + s.Repeats):F0} s > --max-seconds {maxSeconds:F0}";
        if (bytes is { } b && ProcessMemory.Available() is { } avail && b > 0.8 * avail)
            return $"skipped: predicted {Gib(b)} GiB > 80% of the {Gib(avail)} GiB available";
        return null;
    }

    private static string Gib(double bytes) => (bytes / (1L << 30)).ToString("F2");

    public sealed record ProfileMeta(string Model, string DType, int Threads, string Pass, int Warmup, int Repeats, long Parameters, IReadOnlyList<string> Notes);

    private static void PrintTable(ProfileMeta m, IReadOnlyList<ProfileRow> rows)
    {
        Console.WriteLine($"model       {m.Model} ({m.Parameters / 1e6:F1}M parameters), {m.DType}, {m.Threads} threads");
        Console.WriteLine($"pass        {m.Pass}: {m.Warmup} warm-up + {m.Repeats} timed (mean), batch 1, uniform random ids");
        foreach (var n in m.Notes) Console.WriteLine($"note        {n}");
        var table = new Table().AddColumns("method", "tokens", "time s", "tokens/s", "× full time", "peak RSS GiB", "peak over start GiB", "status");
        foreach (var c in table.Columns.Skip(1).Take(6)) c.RightAligned();
        foreach (var r in rows)
        {
            var full = rows.FirstOrDefault(f => f.Method == FullAttention.Id && f.Tokens == r.Tokens && f.MeanSeconds is not null);
            string ratio = r.MeanSeconds is { } s && full?.MeanSeconds is { } fs && r.Method != FullAttention.Id ? (s / fs).ToString("F2") : "";
            table.AddRow(r.Method, r.Tokens.ToString(), r.MeanSeconds?.ToString("F3") ?? "", r.TokensPerSecond?.ToString("F0") ?? "", ratio,
                r.PeakRssBytes is { } p ? Gib(p) : "", r.PeakOverBaselineBytes is { } d ? Gib(d) : "", Markup.Escape(r.Error ?? "ok"));
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 200;
        console.Write(table);
    }

    private static void WriteJson(string path, ProfileMeta m, IReadOnlyList<ProfileRow> rows)
    {
        var doc = new
        {
            model = m.Model, dtype = m.DType, threads = m.Threads, pass = m.Pass, warmup = m.Warmup, repeats = m.Repeats,
            parameters = m.Parameters, notes = m.Notes,
            runs = rows.Select(r => new
            {
                method = r.Method, tokens = r.Tokens, seconds = r.Seconds, mean_seconds = r.MeanSeconds, tokens_per_second = r.TokensPerSecond,
                baseline_rss_bytes = r.BaselineRssBytes, peak_rss_bytes = r.PeakRssBytes, peak_over_baseline_bytes = r.PeakOverBaselineBytes, error = r.Error,
            }),
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(doc, new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
