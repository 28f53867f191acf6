"""A second, independent case table for the answer checker, by family.

Written for this repository from the families public graders' test suites cover (Math-Verify,
NeMo-Skills, the Qwen2.5-Math grader, hendrycks MATH, lm-eval minerva, prm800k) and the gaps the
verifier issue lists; every case is new (other numbers, other expressions), none is copied.
Unlike verify_cases.py beside it, whose predictions are bare answers, a prediction here is the end of
a solution as a model writes it, so extraction is part of what is measured. `apsgen bench verify`
scores apsgen and math-verify on it side by side, per family; tests/test_verify_families.py holds
apsgen to at least math-verify's accuracy on every family with more than 5 cases.

Conventions (see apsgen/verify/POLICY.md): a list answer is unordered unless it is a tuple or an
interval; a decimal is accepted for a fraction only when written to at least six significant
digits; units and currency around a number are ignored; an answer written as an assignment or
equation (`x = 11`) matches its right-hand side; text answers compare case- and space-insensitively.
"""

from __future__ import annotations

from typing import NamedTuple


class FamilyCase(NamedTuple):
    family: str
    gold: str
    pred: str  # the end of a solution, as a model writes it
    expected: bool


def _f(family: str, rows: list[tuple[str, str, bool]]) -> list[FamilyCase]:
    return [FamilyCase(family, g, p, e) for g, p, e in rows]


FAMILIES: list[FamilyCase] = [
    # The final answer is not in \boxed: display or inline math at the end, or an announcing phrase.
    *_f("unboxed_answer", [
        ("17", "Adding the two groups gives the total.\n\nAnswer \\[ 17 \\]", True),
        ("17", "So the number of marbles is\n$$ 17 $$", True),
        ("\\frac{5}{6}", "Therefore the probability is \\( \\frac{5}{6} \\).", True),
        ("3\\sqrt{2}", "The distance is therefore $3\\sqrt{2}$.", True),
        ("64", "Final Answer: The final answer is $64$. I hope it is correct.", True),
        ("-4", "the final answer is -4", True),
        ("17", "Answer \\[ 71 \\]", False),
        ("\\frac{5}{6}", "Therefore the probability is \\( \\frac{6}{5} \\).", False),
        ("64", "Final Answer: The final answer is $46$. I hope it is correct.", False),
    ]),
    # The gold answer itself wrapped in math delimiters, or given as a whole worked solution.
    *_f("wrapped_gold", [
        ("$23$", "The answer is $\\boxed{23}$.", True),
        ("\\(\\frac{2}{9}\\)", "so we get \\boxed{\\frac{2}{9}}", True),
        ("$\\$4.75$", "He pays \\boxed{4.75} dollars.", True),
        ("We add 9 and 14 to get $9+14=\\boxed{23}$.", "The answer is \\boxed{23}.", True),
        ("Since the roots sum to $7$, the answer is $\\boxed{7}$.", "So \\boxed{7}.", True),
        ("$23$", "The answer is $\\boxed{32}$.", False),
        ("We add 9 and 14 to get $9+14=\\boxed{23}$.", "The answer is \\boxed{14}.", False),
    ]),
    # An answer written as an equation or assignment against its bare value (or vice versa).
    *_f("equation_answer", [
        ("13", "Solving the linear equation, \\boxed{x = 13}", True),
        ("(5,1,4)", "The triple is \\boxed{(a,b,c)=(5,1,4)}.", True),
        ("9:16", "The ratio is \\boxed{A_1:A_2=9:16}.", True),
        ("y = -2x + 5", "The line is \\boxed{y=5-2x}.", True),
        ("8", "so \\boxed{n=8}", True),
        ("x=-3", "\\boxed{-3}", True),
        ("13", "Solving the linear equation, \\boxed{x = 31}", False),
        ("(5,1,4)", "The triple is \\boxed{(a,b,c)=(5,4,1)}.", False),
    ]),
    # Several boxes that together make the answer (all roots, both coordinates ...).
    *_f("multiple_boxes", [
        ("2, 7", "The roots are \\boxed{2} and \\boxed{7}.", True),
        ("-1, 1, 4", "So $x=\\boxed{4}$, $x=\\boxed{-1}$ or $x=\\boxed{1}$.", True),
        ("\\{3, 8\\}", "Hence the solutions are \\boxed{3} and \\boxed{8}.", True),
        ("5, 6", "The two values are \\boxed{6} and \\boxed{5}.", True),
        ("2, 7", "The roots are \\boxed{2} and \\boxed{8}.", False),
        ("-1, 1, 4", "So $x=\\boxed{4}$ or $x=\\boxed{-1}$.", False),
    ]),
    # Intervals against inequalities describing the same set.
    *_f("interval_inequality", [
        ("[-3, 5]", "so \\boxed{-3 \\le x \\le 5}", True),
        ("(2, \\infty)", "The solution set is \\boxed{x > 2}.", True),
        ("(-\\infty, 4]", "Therefore \\boxed{x \\leq 4}.", True),
        ("x \\in [0, 6)", "\\boxed{0 \\le x < 6}", True),
        ("-1 < x < 3", "\\boxed{(-1, 3)}", True),
        ("[-3, 5]", "so \\boxed{-3 < x \\le 5}", False),
        ("(2, \\infty)", "The solution set is \\boxed{x \\ge 2}.", False),
    ]),
    # Relation commands and ASCII relations.
    *_f("relation_symbols", [
        ("x > 7", "\\boxed{x \\gt 7}", True),
        ("x < -2", "\\boxed{x \\lt -2}", True),
        ("y \\neq 3", "\\boxed{y != 3}", True),
        ("a \\ne 0", "\\boxed{a \\neq 0}", True),
        ("x \\geq 1", "\\boxed{x >= 1}", True),
        ("x > 7", "\\boxed{x \\lt 7}", False),
        ("y \\neq 3", "\\boxed{y = 3}", False),
    ]),
    # Percent written as words or with the sign.
    *_f("percent", [
        ("35\\%", "The discount is \\boxed{35 percent}.", True),
        ("35", "\\boxed{35\\%}", True),
        ("12.5\\%", "\\boxed{12.5 pct}", True),
        ("60\\%", "so \\boxed{60} percent of the students", True),
        ("8\\%", "\\boxed{8 \\text{ percent}}", True),
        ("35\\%", "The discount is \\boxed{53 percent}.", False),
        ("12.5\\%", "\\boxed{125 pct}", False),
    ]),
    # Units and currency around a number.
    *_f("units_currency", [
        ("14", "The rope is \\boxed{14 \\text{ cm}} long.", True),
        ("\\$3.20", "She pays \\boxed{3.2}.", True),
        ("2500", "The total is \\boxed{\\$2,500}.", True),
        ("45", "\\boxed{45^\\circ}", True),
        ("9", "\\boxed{9\\,\\mathrm{m}^2}", True),
        ("7", "\\boxed{7 \\text{ hours}}", True),
        ("14", "The rope is \\boxed{41 \\text{ cm}} long.", False),
        ("\\$3.20", "She pays \\boxed{\\$3.02}.", False),
    ]),
    # A decimal for a fraction: accepted at six or more significant digits, never coarser.
    *_f("rounded_decimal", [
        ("\\frac{5}{7}", "\\boxed{0.714286}", True),
        ("\\frac{1}{3}", "\\boxed{0.333333}", True),
        ("\\frac{8}{3}", "\\boxed{2.666667}", True),
        ("\\frac{2}{11}", "\\boxed{0.1818182}", True),
        ("\\frac{1}{4}", "\\boxed{0.25}", True),
        ("\\frac{5}{7}", "\\boxed{0.71}", False),
        ("\\frac{1}{3}", "\\boxed{0.3}", False),
        ("\\frac{8}{3}", "\\boxed{2.666668}", False),
    ]),
    # Scientific notation in its written forms.
    *_f("scientific", [
        ("3.1\\times10^{8}", "\\boxed{3.1e8}", True),
        ("4.5 \\times 10^{-3}", "\\boxed{0.0045}", True),
        ("7\\cdot 10^{4}", "\\boxed{70000}", True),
        ("2.5E6", "\\boxed{2.5\\times 10^6}", True),
        ("1.2 \\times 10^{5}", "\\boxed{120,000}", True),
        ("3.1\\times10^{8}", "\\boxed{3.1e7}", False),
        ("4.5 \\times 10^{-3}", "\\boxed{0.045}", False),
    ]),
    # Matrices and vectors in different environments.
    *_f("matrix", [
        ("\\begin{pmatrix} 2 & -1 \\\\ 0 & 5 \\end{pmatrix}",
         "\\boxed{\\begin{bmatrix} 2 & -1 \\\\ 0 & 5 \\end{bmatrix}}", True),
        ("\\begin{pmatrix} 3 \\\\ -4 \\end{pmatrix}", "\\boxed{\\left[\\begin{array}{c} 3 \\\\ -4 \\end{array}\\right]}", True),
        ("\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\boxed{\\begin{matrix} 1 & 0 \\\\ 0 & 1 \\end{matrix}}", True),
        ("\\begin{pmatrix} \\frac{1}{2} \\\\ 6 \\end{pmatrix}", "\\boxed{\\begin{pmatrix} 0.5 \\\\ 6 \\end{pmatrix}}", True),
        ("\\begin{pmatrix} 2 & -1 \\\\ 0 & 5 \\end{pmatrix}",
         "\\boxed{\\begin{bmatrix} 2 & 0 \\\\ -1 & 5 \\end{bmatrix}}", False),
        ("\\begin{pmatrix} 3 \\\\ -4 \\end{pmatrix}", "\\boxed{\\begin{pmatrix} -4 \\\\ 3 \\end{pmatrix}}", False),
    ]),
    # Wrong answers that are numerically close or look alike: must be rejected.
    *_f("close_but_wrong", [
        ("\\frac{1}{3^{60}}", "\\boxed{\\frac{1}{3^{61}}}", False),
        ("\\frac{1}{1998!}", "\\boxed{\\frac{1}{1999!}}", False),
        ("2-\\frac{1}{\\pi}", "\\boxed{2+\\frac{1}{\\pi}}", False),
        ("11:00", "\\boxed{1:00}", False),
        ("10^{-30}", "\\boxed{0}", False),
        ("\\sqrt{2}", "\\boxed{1.41}", False),
        ("1000001", "\\boxed{1000000}", False),
        ("\\frac{1}{3^{60}}", "\\boxed{3^{-60}}", True),
        ("11:00", "\\boxed{11:00}", True),
    ]),
    # Everyday equivalent forms (MATH, GSM8K).
    *_f("fraction_forms", [
        ("\\frac{7}{4}", "\\boxed{\\dfrac{7}{4}}", True),
        ("\\frac{7}{4}", "\\boxed{7/4}", True),
        ("\\frac{7}{4}", "\\boxed{1.75}", True),
        ("\\frac{7}{4}", "\\boxed{1\\frac{3}{4}}", True),
        ("-\\frac{2}{5}", "\\boxed{\\frac{-2}{5}}", True),
        ("\\frac{7}{4}", "\\boxed{\\frac{4}{7}}", False),
        ("-\\frac{2}{5}", "\\boxed{\\frac{2}{5}}", False),
    ]),
    *_f("radicals_pi", [
        ("4\\sqrt{3}", "\\boxed{\\sqrt{48}}", True),
        ("\\frac{\\sqrt{6}}{3}", "\\boxed{\\frac{2}{\\sqrt{6}}}", True),
        ("6\\pi", "\\boxed{6 \\pi}", True),
        ("\\frac{\\pi}{4}", "\\boxed{0.25\\pi}", True),
        ("2+\\sqrt{5}", "\\boxed{\\sqrt{5}+2}", True),
        ("4\\sqrt{3}", "\\boxed{\\sqrt{12}}", False),
        ("6\\pi", "\\boxed{3\\pi}", False),
    ]),
    *_f("sets_tuples", [
        ("\\{1, 4, 9\\}", "\\boxed{\\{9, 1, 4\\}}", True),
        ("1, 4, 9", "\\boxed{9, 4, 1}", True),
        ("(2, -3)", "\\boxed{(2,-3)}", True),
        ("(2, -3)", "\\boxed{(-3, 2)}", False),
        ("\\{1, 4, 9\\}", "\\boxed{\\{1, 4\\}}", False),
        ("(0, 1) \\cup (3, 5)", "\\boxed{(3,5) \\cup (0,1)}", True),
    ]),
    *_f("expressions", [
        ("x^2 - 9", "\\boxed{(x-3)(x+3)}", True),
        ("2a + 6", "\\boxed{2(a+3)}", True),
        ("\\frac{x+1}{2}", "\\boxed{\\frac{1}{2}x+\\frac{1}{2}}", True),
        ("3n^2", "\\boxed{3 n^{2}}", True),
        ("x^2 - 9", "\\boxed{(x-3)^2}", False),
        ("2a + 6", "\\boxed{2a+3}", False),
    ]),
    *_f("text_answers", [
        ("\\text{Tuesday}", "\\boxed{Tuesday}", True),
        ("\\text{(B)}", "\\boxed{B}", True),
        ("\\textbf{(D)}", "The correct option is \\boxed{(D)}.", True),
        ("\\text{even}", "\\boxed{\\text{Even}}", True),
        ("\\text{Tuesday}", "\\boxed{Thursday}", False),
        ("\\text{(B)}", "\\boxed{C}", False),
    ]),
    *_f("integers_thousands", [
        ("4096", "\\boxed{4,096}", True),
        ("1200000", "\\boxed{1{,}200{,}000}", True),
        ("-38", "\\boxed{-38.0}", True),
        ("15", "The answer is 15.", True),
        ("4096", "\\boxed{4,069}", False),
        ("-38", "\\boxed{38}", False),
    ]),
    # The answer stated in a closing sentence, unboxed: how real models often end a word problem.
    *_f("closing_sentence", [
        ("45", "Adding both trips gives 30 + 15 = 45.\n\nTherefore, the train travelled 45 kilometers in total.", True),
        ("12", "She splits 36 stickers among 3 friends.\n\nSo, each friend gets 12 stickers.", True),
        ("250", "The discount is 50, and 300 - 50 = 250. Thus, Mia pays $250 for the bike.", True),
        ("9", "Tom had 15 marbles and gave away 6.\n\nTom has 9 marbles left.", True),
        ("1600", "Each cow gives 40 liters.\n\nIn total, the farm produced **1,600 liters** of milk.", True),
        ("45", "Adding both trips gives the distance.\n\nTherefore, the train travelled 54 kilometers in total.", False),
        ("12", "She splits the stickers.\n\nSo, each friend gets 21 stickers.", False),
        ("9", "Tom had 15 marbles and gave away 6. Then he bought", False),
    ]),
    # An announced answer followed by the computation that gives it, or by a whole sentence.
    *_f("answer_with_computation", [
        ("32", "So the answer is 4 * 8 = 32.", True),
        ("18", "The answer is 3 \\times 6 = 18", True),
        ("150", "Final answer: 100 + 50 = 150 dollars.", True),
        ("7", "**Answer:** Sam has 7 pencils left.", True),
        ("32", "So the answer is 4 * 8 = 36.", False),
        ("18", "The answer is 3 \\times 6 = 16", False),
        ("7", "**Answer:** Sam has 9 pencils left.", False),
    ]),
    # A boxed equation whose right side is the answer, or a defined function against its body.
    *_f("boxed_equation_value", [
        ("16", "\\boxed{|a-b| = 16}", True),
        ("0", "so \\boxed{P(2,5) = 0}", True),
        ("81", "\\boxed{F(10, 3) = 81}", True),
        ("9", "\\boxed{3+3+3=9}", True),
        ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\cos\\alpha = \\frac{\\sqrt3}{2}}", True),
        ("(n, 2)", "\\boxed{(p(n), q(n)) = (n, 2)}", True),
        ("g(x)=3x-1", "\\boxed{3x - 1}", True),
        ("16", "\\boxed{|a-b| = 61}", False),
        ("9", "\\boxed{3+3+3=10}", False),
        ("g(x)=3x-1", "\\boxed{3x + 1}", False),
    ]),
    # Several answers written with words, plus-minus signs, or as a tuple for a solution list.
    *_f("several_answers", [
        ("-4,9", "\\boxed{9 \\text{ and } -4}", True),
        ("3,-8", "the solutions are \\boxed{-8 \\text{ and } 3}", True),
        ("2,-2,5,-5", "\\boxed{\\pm 2, \\pm 5}", True),
        ("10^{2},4", "\\boxed{(100, 4)}", True),
        ("1,2,3", "\\boxed{1, 2, and 3}", True),
        ("-4,9", "\\boxed{9 \\text{ and } 4}", False),
        ("2,-2,5,-5", "\\boxed{\\pm 2, \\pm 3}", False),
        ("10^{2},4", "\\boxed{(100, 5)}", False),
    ]),
    # Marks that change a number's spelling, not its value: a dollar that lost its `$`, a
    # percentage as a fraction of one, a unicode degree sign.
    *_f("marks_on_numbers", [
        ("25", "So she has \\boxed{\\25} left.", True),
        ("37.5\\%", "\\boxed{0.375}", True),
        ("60^{\\circ}", "\\boxed{60°}", True),
        ("0.4", "\\boxed{40\\%}", True),
        ("25", "\\boxed{\\52}", False),
        ("37.5\\%", "\\boxed{0.0375}", False),
        ("60^{\\circ}", "\\boxed{30°}", False),
        # a backslash left at the end of a gold, words after a quantity, a gold's decimal comma
        ("240\\", "So the total is \\boxed{240}.", True),
        ("31", "\\boxed{31\\text{ seats in all}}", True),
        ("0,375", "The share is \\boxed{0.375}.", True),
        ("240\\", "So the total is \\boxed{420}.", False),
        ("31", "\\boxed{13\\text{ seats in all}}", False),
        ("0,375", "The share is \\boxed{375}.", False),
    ]),
    # A gold that names its parts (`PQ=7, RS=9`), or lists solutions as named groups, or joins
    # them with "or"; a gold chain whose value is its last side.
    *_f("named_parts", [
        ("PQ=7, RS=9", "So the two lengths are \\boxed{7, 9}.", True),
        ("m=3,n=8;m=5,n=2", "The pairs are \\boxed{(3,8),(5,2)}.", True),
        ("a_{12} = 5, a_2 = 40", "\\boxed{a_2 = 40, a_{12} = 5}", True),
        ("$14, 9$ or $3$", "\\boxed{3, 9, 14}", True),
        ("$y = 2 + 2 = 4$", "so \\boxed{y = 1 + 3 = 4}", True),
        ("PQ=7, RS=9", "So the two lengths are \\boxed{7, 8}.", False),
        ("m=3,n=8;m=5,n=2", "The pairs are \\boxed{(3,8),(2,5)}.", False),
        ("$14, 9$ or $3$", "\\boxed{3, 9, 41}", False),
        ("$y = 2 + 2 = 4$", "so \\boxed{y = 1 + 3 = 5}", False),
    ]),
    # Where the answer is: an announced answer after an earlier box, a chat turn after it, a
    # pleasantry after the closing sentence, a completion that is the answer alone.
    *_f("answer_position", [
        ("510", "so the interest is \\boxed{10}. She has 500 + 10 = 510. The final answer is $510$.", True),
        ("15", "There are 15 ways. I hope it is correct. <|im_start|>user\nWhat is 2+2?", True),
        ("8", "Therefore, Sam walks 8 miles each week. I hope it is correct.", True),
        ("-17", "-17", True),
        ("2.5", "2,5", True),
        ("(4, 1), (1, 4)", "\\boxed{(1, 4)} \\quad \\text{and} \\quad \\boxed{(4, 1)}", True),
        ("510", "so the interest is \\boxed{510}. She has 500 + 10 = 510. The final answer is $10$.", False),
        ("15", "There are 12 ways. <|im_start|>user\nThe answer is 15.", False),
        ("1234", "12, 34", False),
        ("(4, 1), (1, 4)", "\\boxed{(1, 4)} \\quad \\text{and} \\quad \\boxed{(4, 4)}", False),
    ]),
]
