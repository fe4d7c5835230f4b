namespace Hici.Evaluation;

/// <summary>One LongBench v1 dataset: its prompt template (<c>config/dataset2prompt.json</c>), answer budget
/// (<c>config/dataset2maxlen.json</c>), metric (<c>eval.py → dataset2metric</c>) and whether <c>pred.py</c>
/// wraps it in the chat template.</summary>
public sealed record LongBenchDataset(string Name, string Metric, int MaxNewTokens, bool Chat, string Template, string Category, bool Chinese);

/// <summary>The 21 datasets in the reference's default order, templates verbatim (typos included).</summary>
public static class LongBenchDatasets
{
    public static readonly IReadOnlyList<LongBenchDataset> All = new LongBenchDataset[]
    {
        new("narrativeqa", "qa_f1_score", 128, true, "You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:", "Single-Doc QA", false),
        new("qasper", "qa_f1_score", 128, true, "You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:", "Single-Doc QA", false),
        new("multifieldqa_en", "qa_f1_score", 64, true, "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:", "Single-Doc QA", false),
        new("multifieldqa_zh", "qa_f1_zh_score", 64, true, "阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。\n\n问题：{input}\n回答：", "Single-Doc QA", true),
        new("hotpotqa", "qa_f1_score", 32, true, MultiHop, "Multi-Doc QA", false),
        new("2wikimqa", "qa_f1_score", 32, true, MultiHop, "Multi-Doc QA", false),
        new("musique", "qa_f1_score", 32, true, MultiHop, "Multi-Doc QA", false),
        new("dureader", "rouge_zh_score", 128, true, "请基于给定的文章回答下述问题。\n\n文章：{context}\n\n请基于上述文章回答下面的问题。\n\n问题：{input}\n回答：", "Multi-Doc QA", true),
        new("gov_report", "rouge_score", 512, true, "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\nNow, write a one-page summary of the report.\n\nSummary:", "Summarization", false),
        new("qmsum", "rouge_score", 512, true, "You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:", "Summarization", false),
        new("multi_news", "rouge_score", 512, true, "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:", "Summarization", false),
        new("vcsum", "rouge_zh_score", 512, true, "下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。\n会议记录：\n{context}\n\n会议总结：", "Summarization", true),
        new("trec", "classification_score", 64, false, "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}", "Few-shot", false),
        new("triviaqa", "qa_f1_score", 32, false, "Answer the question based on the given passage. Only give me the answer and do not output any other words. The following are some examples.\n\n{context}\n\n{input}", "Few-shot", false),
        new("samsum", "rouge_score", 128, false, "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}", "Few-shot", false),
        new("lsht", "classification_score", 64, false, "请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}", "Few-shot", true),
        new("passage_count", "count_score", 32, true, "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ", "Synthetic", false),
        new("passage_retrieval_en", "retrieval_score", 32, true, "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\nThe answer is: ", "Synthetic", false),
        new("passage_retrieval_zh", "retrieval_zh_score", 32, true, "以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是\"段落1\"，\"段落2\"等格式\n\n答案是：", "Synthetic", true),
        new("lcc", "code_sim_score", 64, false, "Please complete the code given below. \n{context}Next line of code:\n", "Code", false),
        new("repobench-p", "code_sim_score", 64, false, "Please complete the code given below. \n{context}{input}Next line of code:\n", "Code", false),
    };

    private const string MultiHop = "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:";

    /// <summary>LongBench-E's 13 datasets (files named <c>{name}_e.jsonl</c>).</summary>
    public static readonly IReadOnlyList<string> LongBenchE = new[]
    {
        "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news", "trec", "triviaqa", "samsum",
        "passage_count", "passage_retrieval_en", "lcc", "repobench-p",
    };

    /// <summary>Datasets whose prediction is cut to its first line before scoring (<c>eval.py → scorer</c>).</summary>
    public static bool FirstLineOnly(string name) => name is "trec" or "triviaqa" or "samsum" or "lsht";

    public static LongBenchDataset Get(string name)
    {
        string bare = name.EndsWith("_e", StringComparison.Ordinal) ? name[..^2] : name;
        return All.FirstOrDefault(d => d.Name == bare)
               ?? throw new HiciException($"'{name}' is not a LongBench dataset (one of: {string.Join(", ", All.Select(d => d.Name))})");
    }

    /// <summary><c>template.format(**sample)</c> for the two fields the templates use, in one pass (a
    /// "{input}" inside the context stays text).</summary>
    public static string Fill(string template, string context, string input)
    {
        var sb = new System.Text.StringBuilder(template.Length + context.Length + input.Length);
        int i = 0;
        while (i < template.Length)
        {
            if (string.CompareOrdinal(template, i, "{context}", 0, 9) == 0) { sb.Append(context); i += 9; }
            else if (string.CompareOrdinal(template, i, "{input}", 0, 7) == 0) { sb.Append(input); i += 7; }
            else sb.Append(template[i++]);
        }
        return sb.ToString();
    }
}
