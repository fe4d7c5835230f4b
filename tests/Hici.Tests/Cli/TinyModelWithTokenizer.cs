using System.Text.Json;
using Hici.IO;
using Hici.Models;
using Hici.Tests.Text;

namespace Hici.Tests.Cli;

/// <summary>
/// A temp HF folder: a random tiny Llama whose vocabulary is a real tokenizer's (copied in), so commands that
/// take text (generate, score --text) can run end to end. Deleted on dispose.
/// </summary>
public sealed class TinyModelWithTokenizer : IDisposable
{
    public string Dir { get; }
    public ModelConfig Config { get; }

    public TinyModelWithTokenizer(string tokenizer = "llama2", int vocab = 32000)
    {
        var tokDir = TestData.TokenizerDir(tokenizer);
        Dir = CliRunner.TempDir();
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(tokDir, f), Path.Combine(Dir, f));
        var json = new Dictionary<string, object?>
        {
            ["model_type"] = "llama", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["intermediate_size"] = 48,
            ["num_hidden_layers"] = 1, ["num_attention_heads"] = 2, ["num_key_value_heads"] = 1, ["max_position_embeddings"] = 256,
            ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = true, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        };
        File.WriteAllText(Path.Combine(Dir, "config.json"), JsonSerializer.Serialize(json));
        Config = HfConfigReader.Read(Dir);
        // std 0.5 makes the random model's greedy choices depend strongly on the context.
        using var w = RandomWeights.For(Config, seed: 3, std: 0.5);
        SafeTensorsWriter.Save(Path.Combine(Dir, "model.safetensors"), w.Tensors);
    }

    public void Dispose() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
}
