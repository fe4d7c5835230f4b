namespace Hici.Training;

/// <summary>Where a <see cref="TokenSampler"/> stands: the epoch and the next window of that epoch's order.</summary>
public sealed record SamplerState(long Epoch, long Cursor);

/// <summary>
/// Training sequences from a token file: the file is cut into consecutive windows of
/// <see cref="SequenceLength"/> tokens (the tail that does not fill one is dropped), visited in a seeded random
/// order that is redrawn each epoch (seed + epoch), as the reference's shuffle(seed) + the Trainer's seeded
/// sampler. The state is two numbers, saved in every checkpoint, so a resumed run reads exactly the windows the
/// straight run would have read.
/// </summary>
public sealed class TokenSampler
{
    private readonly TokenFile _file;
    private readonly long _seed;
    private long[] _order = Array.Empty<long>();
    private long _orderEpoch = -1;

    public int SequenceLength { get; }
    public long Windows { get; }
    public SamplerState State { get; private set; } = new(0, 0);
    public bool Shuffle { get; }

    public TokenSampler(TokenFile file, int sequenceLength, long seed, bool shuffle = true)
    {
        if (sequenceLength < 2) throw new HiciException($"sequence length must be at least 2 (got {sequenceLength})");
        if (file.Info.ChunkLength is { } c && c != sequenceLength)
            throw new HiciException($"{file.Path}: packed in chunks of {c} tokens (the reference packing); train with --model-max-length {c} or prepare the data again");
        _file = file;
        _seed = seed;
        Shuffle = shuffle;
        SequenceLength = sequenceLength;
        Windows = file.Length / sequenceLength;
        if (Windows == 0) throw new HiciException($"{file.Path}: {file.Length} tokens do not fill one sequence of {sequenceLength}");
    }

    public void Restore(SamplerState s)
    {
        if (s.Epoch < 0 || s.Cursor < 0 || s.Cursor > Windows) throw new HiciException($"data position epoch {s.Epoch}, window {s.Cursor} does not fit {_file.Path} ({Windows} windows of {SequenceLength})");
        State = s;
    }

    /// <summary>The next <paramref name="batch"/> sequences as ids [batch × L] (row-major).</summary>
    public long[] Next(int batch)
    {
        var r = new long[(long)batch * SequenceLength];
        for (int i = 0; i < batch; i++)
        {
            if (State.Cursor >= Windows) State = new SamplerState(State.Epoch + 1, 0);
            long w = Order(State.Epoch)[State.Cursor];
            State = State with { Cursor = State.Cursor + 1 };
            _file.Read(w * SequenceLength, SequenceLength).CopyTo(r, (long)i * SequenceLength);
        }
        return r;
    }

    private long[] Order(long epoch)
    {
        if (epoch == _orderEpoch) return _order;
        var o = new long[Windows];
        for (long i = 0; i < Windows; i++) o[i] = i;
        if (Shuffle)
        {
            var rng = new Random(unchecked((int)(_seed * 1_000_003 + epoch)));
            for (long i = Windows - 1; i > 0; i--)
            {
                long j = rng.NextInt64(i + 1);
                (o[i], o[j]) = (o[j], o[i]);
            }
        }
        _orderEpoch = epoch;
        return _order = o;
    }
}
