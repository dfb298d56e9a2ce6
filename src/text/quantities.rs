//! Numbers and the numeric conditions a sentence states ("2 hingga 5 tahun", "above
//! RM1 million"), and how well they fit a question's numbers.

/// A numeric condition a sentence states, e.g. "2 hingga 5 tahun" or "more than 10".
#[derive(Debug, Clone, Copy, PartialEq)]
enum Condition {
    Between(f64, f64),
    Below(f64),
    Above(f64),
    AtLeast(f64),
    AtMost(f64),
}

impl Condition {
    /// The numbers the condition names.
    fn operands(self) -> Vec<f64> {
        match self {
            Condition::Between(a, b) => vec![a, b],
            Condition::Below(x)
            | Condition::Above(x)
            | Condition::AtLeast(x)
            | Condition::AtMost(x) => vec![x],
        }
    }

    /// A value that meets the condition, near its bound: half a unit past it for whole
    /// numbers ("more than 10 years" → 10.5), a thousandth for others.
    fn example(self) -> f64 {
        let step = |x: f64| if x.fract() == 0.0 { 0.5 } else { 0.001 };
        match self {
            Condition::Between(a, b) => (a + b) / 2.0,
            Condition::Below(x) => x - step(x),
            Condition::Above(x) => x + step(x),
            Condition::AtLeast(x) | Condition::AtMost(x) => x,
        }
    }

    fn holds(self, n: f64) -> bool {
        match self {
            Condition::Between(a, b) => a <= n && n <= b,
            Condition::Below(x) => n < x,
            Condition::Above(x) => n > x,
            Condition::AtLeast(x) => n >= x,
            Condition::AtMost(x) => n <= x,
        }
    }
}

fn parse_number(w: &str) -> Option<f64> {
    let t = w.trim_start_matches("rm").replace(',', "");
    if t.is_empty() || !t.chars().next()?.is_ascii_digit() {
        return None;
    }
    // Spoken thousands: "10k".
    if let Some(k) = t.strip_suffix('k') {
        return k.parse::<f64>().ok().map(|x| x * 1000.0);
    }
    t.parse().ok()
}

/// What a word after a number multiplies it by ("RM1 million", "2 juta").
fn multiplier(w: Option<&String>) -> f64 {
    match w.map(String::as_str) {
        Some("thousand" | "ribu") => 1e3,
        Some("million" | "juta") => 1e6,
        Some("billion" | "bilion") => 1e9,
        _ => 1.0,
    }
}

/// Numbers in `text` (plain and "RM5,000" style).
fn numbers(text: &str) -> Vec<f64> {
    let words = crate::text::analysis::tokenize(text);
    words
        .iter()
        .enumerate()
        .filter_map(|(i, w)| parse_number(w).map(|n| n * multiplier(words.get(i + 1))))
        .collect()
}

/// Numeric conditions stated in a sentence, in Malay or English.
fn conditions(text: &str) -> Vec<Condition> {
    let words = crate::text::analysis::tokenize(text);
    let num = |i: usize| {
        words
            .get(i)
            .and_then(|w| parse_number(w))
            .map(|n| n * multiplier(words.get(i + 1)))
    };
    let mut out = Vec::new();
    for i in 0..words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        // "X hingga/to/- Y" with an optional unit between: "2 tahun hingga 5 tahun".
        if let Some(a) = num(i) {
            for gap in [1usize, 2] {
                let link = words.get(i + gap).map(String::as_str).unwrap_or("");
                if matches!(link, "hingga" | "to" | "sehingga" | "and" | "dan") {
                    if let Some(b) = num(i + gap + 1) {
                        if a < b {
                            out.push(Condition::Between(a, b));
                        }
                    }
                }
            }
        }
        let after = |skip: usize| num(i + skip);
        match (w, next) {
            ("kurang", "daripada") | ("less", "than") | ("fewer", "than") => {
                if let Some(x) = after(2) {
                    out.push(Condition::Below(x));
                }
            }
            ("lebih", "daripada" | "dari") | ("more", "than") => {
                if let Some(x) = after(2) {
                    out.push(Condition::Above(x));
                }
            }
            // Spoken Malay drops "daripada": "lebih 10 tahun", "kurang 2 tahun".
            ("lebih", _) if parse_number(next).is_some() => {
                if let Some(x) = after(1) {
                    out.push(Condition::Above(x));
                }
            }
            ("kurang", _) if parse_number(next).is_some() => {
                if let Some(x) = after(1) {
                    out.push(Condition::Below(x));
                }
            }
            ("at", "least") | ("sekurang", "kurangnya") => {
                if let Some(x) = after(2) {
                    out.push(Condition::AtLeast(x));
                }
            }
            ("not", "exceeding") | ("tidak", "melebihi") | ("up", "to") => {
                if let Some(x) = after(2) {
                    out.push(Condition::AtMost(x));
                }
            }
            ("melebihi" | "exceeding" | "above" | "over", _)
                if !matches!(
                    words.get(i.wrapping_sub(1)).map(String::as_str),
                    Some("tidak" | "not")
                ) =>
            {
                if let Some(x) = after(1) {
                    out.push(Condition::Above(x));
                }
            }
            ("below" | "under", _) => {
                if let Some(x) = after(1) {
                    out.push(Condition::Below(x));
                }
            }
            _ => {}
        }
    }
    out
}

/// How well a sentence's numbers fit the question's: +1 when the conditions the sentence
/// states all hold for a number in the question ("3 years" vs "2 to 5 years"), -1 when the
/// sentence states conditions and none holds, 0 when either side has no numbers.
/// Policies are full of thresholds; embeddings cannot compare numbers.
pub fn numeric_fit(question: &str, sentence: &str) -> f32 {
    NumericQuestion::new(question).fit(sentence)
}

/// The numbers of a question, extracted once for scoring many sentences.
#[derive(Debug, Clone)]
pub struct NumericQuestion {
    numbers: Vec<f64>,
}

impl NumericQuestion {
    /// The numbers a question asks about. A number it states a condition on stands for
    /// a value that meets the condition: "lebih 10 tahun" asks about more than 10 years,
    /// which the "lebih daripada 5 tahun tetapi tidak melebihi 10 tahun" row of a tiered
    /// rule does not cover, though it covers 10 itself.
    pub fn new(question: &str) -> Self {
        let conds = conditions(question);
        let operands: Vec<f64> = conds.iter().flat_map(|c| c.operands()).collect();
        let mut numbers: Vec<f64> = conds.iter().map(|c| c.example()).collect();
        numbers.extend(
            self::numbers(question)
                .into_iter()
                .filter(|n| !operands.contains(n)),
        );
        NumericQuestion { numbers }
    }

    /// Whether the question states no number.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// See [`numeric_fit`].
    pub fn fit(&self, sentence: &str) -> f32 {
        if self.numbers.is_empty() {
            return 0.0;
        }
        let conds = conditions(sentence);
        if conds.is_empty() {
            return 0.0;
        }
        // Conditions in one sentence are read together: "more than 5 but not exceeding 10".
        if self
            .numbers
            .iter()
            .any(|&n| conds.iter().all(|c| c.holds(n)))
        {
            1.0
        } else {
            -1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_in_the_question_selects_the_row_beyond_its_bound() {
        let rows = [
            "Pekerja yang telah berkhidmat selama 2 hingga 5 tahun layak mendapat 16 hari.",
            "Pekerja yang telah berkhidmat lebih daripada 5 tahun tetapi tidak melebihi 10 \
             tahun layak mendapat 20 hari.",
            "Pekerja yang telah berkhidmat lebih daripada 10 tahun layak mendapat 24 hari.",
        ];
        let fits = |q: &str| -> Vec<f32> {
            let n = NumericQuestion::new(q);
            rows.iter().map(|r| n.fit(r)).collect()
        };
        assert_eq!(fits("dan lebih 10 tahun?"), [-1.0, -1.0, 1.0]);
        assert_eq!(
            fits("cuti tahunan khidmat lebih dari 10 tahun"),
            [-1.0, -1.0, 1.0]
        );
        assert_eq!(
            fits("And for someone with more than 5 years?"),
            [-1.0, 1.0, -1.0]
        );
        // A bare number is itself: 10 years is in the middle row.
        assert_eq!(fits("kalau dah genap 10 tahun?"), [-1.0, 1.0, -1.0]);
        assert_eq!(fits("kurang 2 tahun"), [-1.0, -1.0, -1.0]);
    }

    #[test]
    fn spoken_and_written_magnitudes() {
        let q = NumericQuestion::new("above 10k?");
        assert_eq!(
            q.fit("Claims of more than RM10,000 are approved by the CFO."),
            1.0
        );
        assert_eq!(q.fit("Claims of more than RM3,000 and up to RM10,000 are approved by the Head of Division."), -1.0);
        let q = NumericQuestion::new("Who approves purchases above RM1 million?");
        assert_eq!(
            q.fit("Perolehan melebihi RM500,000 diluluskan oleh Lembaga."),
            1.0
        );
        assert_eq!(
            q.fit("Perolehan tidak melebihi RM500,000 diluluskan oleh CFO."),
            -1.0
        );
    }

    #[test]
    fn numbers_fit_conditions() {
        let q = "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?";
        assert_eq!(
            numeric_fit(
                q,
                "Pekerja yang telah berkhidmat selama 2 hingga 5 tahun layak mendapat 16 hari"
            ),
            1.0
        );
        assert_eq!(
            numeric_fit(
                q,
                "berkhidmat kurang daripada 2 tahun layak mendapat 14 hari"
            ),
            -1.0
        );
        assert_eq!(
            numeric_fit(
                q,
                "lebih daripada 5 tahun tetapi tidak melebihi 10 tahun layak 20 hari"
            ),
            -1.0
        );
        assert_eq!(
            numeric_fit(q, "lebih daripada 10 tahun layak mendapat 24 hari"),
            -1.0
        );
        assert_eq!(
            numeric_fit(q, "Cuti tahunan dikira mengikut tahun kalendar."),
            0.0
        );
        let en = "Do I need three quotations for a RM8,000 purchase?";
        assert_eq!(
            numeric_fit(
                en,
                "Purchases above RM5,000 but not exceeding RM50,000 need three quotations"
            ),
            1.0
        );
        assert_eq!(
            numeric_fit(en, "Purchases above RM50,000 go to open tender"),
            -1.0
        );
        assert_eq!(
            numeric_fit("What is the capital of Peru?", "between 2 and 5 years"),
            0.0
        );
    }
}
