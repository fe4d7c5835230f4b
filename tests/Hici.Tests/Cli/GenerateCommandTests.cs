using Hici.Models;
using Hici.Tests.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Cli;

/// <summary>
/// `hici generate` end to end: a random tiny Llama whose vocabulary is the real Mistral/Llama-2-style
/// tokenizer's (so text round-trips), checked against a greedy loop that recomputes the whole sequence
/// at every step with no cache and decodes with the tokenizer.
/// </summary>
[Collection("Console")]
public class GenerateCommandTests : IDisposable
{
    private readonly TinyModelWithTokenizer _model = new("llama2");
    private string _dir => _model.Dir;

    public void Dispose() => _model.Dispose();

    private string ReferenceGreedy(string prompt, int maxNew)
    {
        var tok = TestData.Tokenizer("llama2");
        var ids = tok.Encode(prompt).Select(i => (long)i).ToList();
        int n0 = ids.Count;
        using var lm = CausalLM.FromPretrained(_dir, ScalarType.Float32);
        using var _ = no_grad();
        for (int i = 0; i < maxNew; i++)
        {
            using var scope = NewDisposeScope();
            var logits = lm.Forward(tensor(ids.ToArray()));          // whole sequence, no cache
            long next = logits[0, -1].argmax().item<long>();
            if (next == 2) break;                                    // EOS ends generation and is not printed
            ids.Add(next);
        }
        return tok.Decode(ids.Skip(n0).Select(i => (int)i).ToArray(), skipSpecialTokens: true);
    }

    [Fact]
    public void GreedyOutputEqualsFullRecomputeDecoded()
    {
        var r = CliRunner.Run("generate", "--model", _dir, "--prompt", "The quick brown fox", "--max-new-tokens", "12", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        var expected = ReferenceGreedy("The quick brown fox", 12);
        Assert.False(string.IsNullOrEmpty(expected));
        Assert.Equal(expected, r.Out.TrimEnd('\n'));
        Assert.Contains("prompt tokens", r.Err);
    }

    [Fact]
    public void StopStringCutsTheOutputBeforeIt()
    {
        var full = ReferenceGreedy("Once upon a time", 16);
        Assert.True(full.Length >= 6, $"reference output too short to test stop strings: '{full}'");
        var stop = full.Substring(full.Length / 2, 2);
        int cut = full.IndexOf(stop, StringComparison.Ordinal);
        var r = CliRunner.Run("generate", "--model", _dir, "--prompt", "Once upon a time", "--max-new-tokens", "16", "--stop", stop);
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(full[..cut], r.Out.TrimEnd('\n'));
        Assert.Contains("stop: stop string", r.Err);
    }

    [Fact]
    public void SeededSamplingIsReproducible()
    {
        string[] a = { "generate", "--model", _dir, "--prompt", "Hello", "--max-new-tokens", "10", "--temperature", "1.0", "--top-k", "50", "--top-p", "0.9", "--seed", "11" };
        var r1 = CliRunner.Run(a);
        var r2 = CliRunner.Run(a);
        Assert.True(r1.Code == 0, r1.Err);
        Assert.Equal(r1.Out, r2.Out);
    }

    [Fact]
    public void ChatWithForcedTemplateRuns()
    {
        var r = CliRunner.Run("generate", "--model", _dir, "--prompt", "Hi", "--chat", "--chat-template", "llama2", "--system", "Be brief.", "--max-new-tokens", "3");
        Assert.True(r.Code == 0, r.Err);
    }

    [Theory]
    [InlineData("--system", "x")]                 // needs --chat
    [InlineData("--temperature", "-1")]
    [InlineData("--max-new-tokens", "0")]
    [InlineData("--top-p", "0")]
    public void BadFlagsGiveOneLineError(string flag, string value)
    {
        var line = CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", _dir, "--prompt", "x", flag, value));
        Assert.Contains(flag.TrimStart('-').Split('-')[0], line);
    }

    [Fact]
    public void UnknownChatTemplateIsAClearError()
    {
        // This tokenizer_config.json carries Mistral's template, which HiCI.NET does not reproduce.
        var line = CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", _dir, "--prompt", "x", "--chat"));
        Assert.Contains("chat_template", line);
    }

    [Fact]
    public void TokenizerLargerThanModelVocabularyIsRefused()
    {
        var line = CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", _dir, "--tokenizer", TestData.TokenizerDir("qwen3"), "--prompt", "x"));
        Assert.Contains("vocabulary", line);
    }
}
