namespace Hici.Text;

/// <summary>
/// GPT-2's reversible byte ↔ printable-character table used by byte-level BPE (Llama-3, Qwen):
/// printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards.
/// </summary>
internal static class ByteLevel
{
    public static readonly char[] ByteToChar = BuildByteToChar();
    static readonly short[] CharToByteTable = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        var direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = direct[b] ? (char)b : (char)(256 + n++);
        return map;
    }

    static short[] BuildCharToByte()
    {
        var table = new short[512];
        Array.Fill(table, (short)-1);
        for (int b = 0; b < 256; b++) table[ByteToChar[b]] = (short)b;
        return table;
    }

    /// <summary>The byte a byte-level character stands for, or -1 for any other character.</summary>
    public static int CharToByte(char c) => c < 512 ? CharToByteTable[c] : -1;
}
