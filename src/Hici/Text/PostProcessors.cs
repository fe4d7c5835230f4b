namespace Hici.Text;

/// <summary>A tokenizer.json "post_processor", reduced to what it does to the ids of one sequence.</summary>
internal interface IPostProcessor
{
    /// <summary>Wraps the ids of one text (HF's "single" template) when special tokens are wanted.</summary>
    List<int> Process(List<int> ids, bool addSpecialTokens);
}

/// <summary>HF's TemplateProcessing, single-sequence template: special-token pieces and "$A".</summary>
internal sealed class TemplatePostProcessor(IReadOnlyList<int[]?> pieces) : IPostProcessor
{
    /// <summary>Each piece is the ids of a special token, or null for the sequence itself.</summary>
    public IReadOnlyList<int[]?> Pieces => pieces;

    public List<int> Process(List<int> ids, bool addSpecialTokens)
    {
        var output = new List<int>(ids.Count + pieces.Count);
        foreach (var piece in pieces)
        {
            if (piece is null) output.AddRange(ids);
            else if (addSpecialTokens) output.AddRange(piece);
        }
        return output;
    }
}

/// <summary>Post-processors that leave ids alone (ByteLevel only adjusts offsets).</summary>
internal sealed class IdentityPostProcessor : IPostProcessor
{
    public List<int> Process(List<int> ids, bool addSpecialTokens) => ids;
}

internal sealed class SequencePostProcessor(IReadOnlyList<IPostProcessor> steps) : IPostProcessor
{
    public IReadOnlyList<IPostProcessor> Steps => steps;

    public List<int> Process(List<int> ids, bool addSpecialTokens)
    {
        foreach (var step in steps) ids = step.Process(ids, addSpecialTokens);
        return ids;
    }
}
