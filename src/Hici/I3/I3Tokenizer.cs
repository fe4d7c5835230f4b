namespace Hici.I3;

/// <summary>The i3 vocabulary layout: 13 special tokens at ids 0–12 in the card's order, then the 256 bytes, then merges.</summary>
public static class I3Tokenizer
{
    public static readonly string[] SpecialTokens =
    [
        "<UNK>", "<PAD>", "<BOS>", "<EOS>", "<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>",
        "<|endoftext|>", "<|eot_id|>", "[INST]", "[/INST]",
    ];

    public const int UnkId = 0, PadId = 1, BosId = 2, EosId = 3, ImEndId = 5, EndOfTextId = 9, EotId = 10;
    /// <summary>Id of byte 0; byte b is FirstByteId + b.</summary>
    public const int FirstByteId = 13;
    public const int FirstMergeId = FirstByteId + 256;
    /// <summary>Generation stops on these (ChatML end, document end and the other end markers).</summary>
    public static readonly int[] StopIds = [ImEndId, EosId, EndOfTextId, EotId];
}
