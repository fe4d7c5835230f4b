using Hici.IO;
using Hici.Text;

namespace Hici.Training;

/// <summary>How <see cref="DataPreparer"/> lays documents out.</summary>
/// <param name="ReferenceChunkLength">null: each document tokenized (BOS as the tokenizer adds it) and ended with
/// EOS, all concatenated. A length L: the reference packing (fine-tune_hici.py tokenize_fn, _tokenize_and_chunk):
/// documents grouped up to 200,000 characters, joined with the EOS string, tokenized once per group (one BOS
/// per group), right-padded with <paramref name="PadId"/> to a multiple of L, cut into L-token chunks.</param>
public sealed record PrepareOptions(int? ReferenceChunkLength = null, int? PadId = null);

/// <summary>Tokenizes a corpus into a token file, streaming (one document — or one 200K-character group — at a time).</summary>
public static class DataPreparer
{
    public const int MaxCharsPerSegment = 200_000;

    public static TokenFileInfo Prepare(IReadOnlyList<string> files, CorpusFormat format, HfTokenizer tok, string tokenizerName, string output,
        PrepareOptions opt, Action<long, long>? progress = null)
    {
        foreach (var f in files) InputFiles.CheckRegularFile(f);   // before sizes are summed: a device has none, a FIFO never ends
        long totalBytes = files.Sum(f => new FileInfo(f).Length);
        string dtype = TokenFileInfo.DTypeFor(tok.VocabSize);
        using var w = new TokenFileWriter(output, dtype);
        long docs = 0;
        if (opt.ReferenceChunkLength is not { } L)
        {
            int eos = tok.EosId ?? throw new HiciException($"{tokenizerName}: the tokenizer has no EOS token to end documents with");
            foreach (var d in CorpusDocuments.Read(files, format))
            {
                var ids = tok.Encode(d.Text);
                w.Add(ids, endsDocument: false);
                w.Add(new[] { eos });
                docs++;
                progress?.Invoke(d.BytesDone, totalBytes);
            }
        }
        else
        {
            if (L < 2) throw new HiciException($"--model-max-length must be at least 2 (got {L})");
            int pad = opt.PadId ?? throw new HiciException($"{tokenizerName}: the reference packing pads with a pad token; the tokenizer has none (give --pad-id)");
            string eosText = tok.EosToken ?? throw new HiciException($"{tokenizerName}: the tokenizer has no EOS token string to join documents with");
            var group = new List<string>();
            long chars = 0;
            void Flush()
            {
                if (group.Count == 0) return;
                Chunk(w, tok.Encode(string.Join(eosText, group)), L, pad);
                group.Clear();
                chars = 0;
            }
            foreach (var d in CorpusDocuments.Read(files, format))
            {
                docs++;
                if (d.Text.Length > MaxCharsPerSegment)
                {
                    Flush();
                    for (int s = 0; s < d.Text.Length; s += MaxCharsPerSegment)
                        Chunk(w, tok.Encode(d.Text.Substring(s, Math.Min(MaxCharsPerSegment, d.Text.Length - s))), L, pad);
                }
                else
                {
                    if (chars + d.Text.Length > MaxCharsPerSegment && group.Count > 0) Flush();
                    group.Add(d.Text);
                    chars += d.Text.Length;
                }
                progress?.Invoke(d.BytesDone, totalBytes);
            }
            Flush();
        }
        var info = new TokenFileInfo(tokenizerName, dtype, w.Tokens, docs, opt.ReferenceChunkLength,
            opt.ReferenceChunkLength is null ? null : opt.PadId, tok.VocabSize);
        // The metadata first, the token file last: the .bin's rename is the commit. Killed in between, there is no new
        // .bin (a bare one would be read with guessed settings), or an old one whose token count the new metadata refutes.
        info.Save(output);
        w.Commit();
        return info;
    }

    private static void Chunk(TokenFileWriter w, int[] ids, int L, int pad)
    {
        int padded = (ids.Length + L - 1) / L * L;
        w.Add(ids, endsDocument: false);
        if (padded > ids.Length) w.Add(Enumerable.Repeat(pad, padded - ids.Length).ToArray(), endsDocument: false);
    }
}
