using System.Globalization;
using System.Numerics;
using System.Text;

namespace Hici.Evaluation;

/// <summary>
/// The few Python behaviours the reference's output files and scores depend on: <c>json.dumps</c> text
/// (", " / ": " separators, <c>indent</c>, <c>ensure_ascii</c>, float <c>repr</c>, NaN), <c>round(x, 2)</c>
/// (correctly rounded from the exact binary value, ties to even) and <c>str.split()</c> whitespace.
/// Hand-written because System.Text.Json formats numbers and escapes differently, and a result file should
/// read byte for byte like the reference's.
/// </summary>
public static class PyJson
{
    /// <summary>A JSON object whose keys keep their insertion order, as Python dicts do.</summary>
    public sealed class Obj : List<KeyValuePair<string, object?>>
    {
        public void Add(string key, object? value) => Add(new KeyValuePair<string, object?>(key, value));
    }

    /// <param name="value">string, bool, integer types, double/float, IEnumerable (list), Obj, or null</param>
    public static string Dumps(object? value, bool ensureAscii = true, int? indent = null)
    {
        var sb = new StringBuilder();
        Write(sb, value, ensureAscii, indent, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, bool ascii, int? indent, int level)
    {
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case string s: WriteString(sb, s, ascii); break;
            case int or long or short or uint or ulong: sb.Append(Convert.ToString(v, CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatRepr(d)); break;
            case float f: sb.Append(FloatRepr(f)); break;
            case Obj o: Container(sb, '{', '}', o.Count, i => { WriteString(sb, o[i].Key, ascii); sb.Append(": "); Write(sb, o[i].Value, ascii, indent, level + 1); }, indent, level); break;
            case System.Collections.IEnumerable e:
                var items = e.Cast<object?>().ToList();
                Container(sb, '[', ']', items.Count, i => Write(sb, items[i], ascii, indent, level + 1), indent, level);
                break;
            default: throw new ArgumentException($"PyJson: cannot write {v.GetType().Name}");
        }
    }

    private static void Container(StringBuilder sb, char open, char close, int n, Action<int> item, int? indent, int level)
    {
        sb.Append(open);
        if (n == 0) { sb.Append(close); return; }
        for (int i = 0; i < n; i++)
        {
            if (indent is { } k) sb.Append('\n').Append(' ', k * (level + 1));
            else if (i > 0) sb.Append(' ');
            item(i);
            if (i < n - 1) sb.Append(',');
        }
        if (indent is { } k2) sb.Append('\n').Append(' ', k2 * level);
        sb.Append(close);
    }

    private static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e)) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, fixed for 1e-4 ≤ |x| &lt; 1e16, else d.ddde±XX.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsPositiveInfinity(d)) return "Infinity";
        if (double.IsNegativeInfinity(d)) return "-Infinity";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // shortest round-trip digits and the decimal exponent, from .NET's "E" of the shortest "R" text
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        string e = double.Parse(r, CultureInfo.InvariantCulture).ToString("E16", CultureInfo.InvariantCulture);
        string mant = r.Contains('E') ? r[..r.IndexOf('E')] : r;
        string digits = mant.Replace(".", "").TrimStart('0');
        int exp = int.Parse(e[(e.IndexOf('E') + 1)..], CultureInfo.InvariantCulture);
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        string sign = d < 0 ? "-" : "";
        if (exp >= -4 && exp < 16)
        {
            string s;
            if (exp >= 0)
            {
                string intPart = digits.Length > exp + 1 ? digits[..(exp + 1)] : digits.PadRight(exp + 1, '0');
                string frac = digits.Length > exp + 1 ? digits[(exp + 1)..] : "0";
                s = intPart + "." + frac;
            }
            else s = "0." + new string('0', -exp - 1) + digits;
            return sign + s;
        }
        string m = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
        return sign + m + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>Python's <c>round(x, ndigits)</c> for a double: the exact binary value rounded half-to-even.</summary>
    public static double Round(double x, int ndigits)
    {
        if (!double.IsFinite(x) || x == 0) return x;
        long bits = BitConverter.DoubleToInt64Bits(x);
        bool neg = bits < 0;
        int bexp = (int)((bits >> 52) & 0x7FF);
        long frac = bits & 0xFFFFFFFFFFFFFL;
        BigInteger mant = bexp == 0 ? frac : frac | (1L << 52);
        int e2 = (bexp == 0 ? 1 : bexp) - 1075;           // |x| = mant · 2^e2
        BigInteger num = mant * BigInteger.Pow(10, ndigits), den = BigInteger.One;
        if (e2 >= 0) num <<= e2; else den <<= -e2;
        var q = BigInteger.DivRem(num, den, out var rem);
        int cmp = (rem * 2).CompareTo(den);
        if (cmp > 0 || (cmp == 0 && !q.IsEven)) q += 1;
        string txt = q.ToString(CultureInfo.InvariantCulture).PadLeft(ndigits + 1, '0');
        string dec = ndigits > 0 ? txt[..^ndigits] + "." + txt[^ndigits..] : txt;
        double r = double.Parse(dec, CultureInfo.InvariantCulture);   // correctly rounded in .NET Core 3.0+
        return neg ? -r : r;
    }

    /// <summary>Python's <c>str.isspace</c> for one UTF-16 unit (adds U+001C..U+001F to .NET's set).</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\x1c' && c <= '\x1f');

    /// <summary>Python's <c>s.split()</c>: runs of whitespace separate, no empty pieces.</summary>
    public static List<string> SplitWhitespace(string s)
    {
        var parts = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && IsSpace(s[i])) i++;
            int start = i;
            while (i < s.Length && !IsSpace(s[i])) i++;
            if (i > start) parts.Add(s[start..i]);
        }
        return parts;
    }
}
