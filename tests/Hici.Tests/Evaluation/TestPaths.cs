namespace Hici.Tests.Evaluation;

internal static class TestPaths
{
    public static string Repo => Hici.Tests.Models.ModelFixtures.Root;
    public static string Fixtures => Path.Combine(Repo, "tests", "fixtures");
}
