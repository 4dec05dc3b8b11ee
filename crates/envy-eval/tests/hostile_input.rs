//! Input built to hang or crash the evaluator ends with a value or a clean error: nesting a
//! million deep in every construct, a left-nested chain longer than the stack, huge list
//! sizes, numbers out of range. Each case must finish; how fast is bench material, not an
//! assertion here.

use envy_eval::{ErrorKind, Evaluator, Pos, print, run_with_stack};

/// Evaluate `text` strictly on the evaluator's own thread: the printed value, or the
/// rendered error and its kind.
fn eval(text: String) -> Result<String, (ErrorKind, String)> {
    run_with_stack(move || {
        let mut ev = Evaluator::builder().build();
        let v = ev
            .eval_string(&text, "/")
            .and_then(|v| ev.force_deep(&v, Pos::NONE));
        match v {
            Ok(v) => Ok(String::from_utf8_lossy(&print::print_value(&v)).into_owned()),
            Err(e) => Err((e.kind, e.render(false))),
        }
    })
}

fn nested(open: &str, mid: &str, close: &str, n: usize) -> String {
    format!("{}{mid}{}", open.repeat(n), close.repeat(n))
}

const MILLION: usize = 1_000_000;

#[test]
fn a_million_levels_of_syntax_is_nix_memory_exhausted() {
    for text in [
        nested("[", "", "]", MILLION),
        nested("(", "1", ")", MILLION),
        nested("{a=", "1", ";}", MILLION),
        nested("rec {a=", "1", ";}", MILLION),
        nested("\"${", "1", "}\"", MILLION),
        nested("''${", "1", "}''", MILLION),
        nested("let a = ", "1", "; in a", MILLION),
        format!("{}1", "x: ".repeat(MILLION)),
        format!("{}1", "-".repeat(MILLION)),
        format!("{}true", "!".repeat(MILLION)),
        format!("{}[]", "[] ++ ".repeat(MILLION)),
        format!("{}1", "if true then 1 else ".repeat(MILLION)),
    ] {
        let head: String = text.chars().take(12).collect();
        let (kind, msg) = eval(text).expect_err(&head);
        assert_eq!(kind, ErrorKind::Parse, "{head}: {msg}");
        assert!(msg.starts_with("error: memory exhausted"), "{head}: {msg}");
    }
}

#[test]
fn nesting_nix_accepts_still_evaluates() {
    assert_eq!(eval(nested("(", "1", ")", 9_000)).unwrap(), "1");
    assert_eq!(
        eval(format!("({}1) 1", "x: ".repeat(2_000))).unwrap(),
        "<LAMBDA>"
    );
    let list = eval(nested("[", "", "]", 4_000)).unwrap();
    assert!(
        list.starts_with("[ [ [") && list.ends_with("] ] ]"),
        "{list}"
    );
}

// Regression: rnix rescanned the rest of a word at each token and rowan rehashed whole
// subtrees, so `1+1+…` took time quadratic in its length; past the stack it crashed.
#[test]
fn long_left_nested_chains_are_a_value_or_a_stack_overflow() {
    assert_eq!(eval(format!("{}1", "1+".repeat(20_000))).unwrap(), "20001");
    match eval(format!("{}1", "1+".repeat(MILLION))) {
        Ok(v) => assert_eq!(v, (MILLION + 1).to_string()),
        Err((kind, msg)) => {
            assert_eq!(kind, ErrorKind::StackOverflow, "{msg}");
            assert!(msg.contains("stack overflow"), "{msg}");
        }
    }
}

#[test]
fn from_json_a_million_deep_is_a_clean_error() {
    let text = format!("builtins.fromJSON \"{}\"", nested("[", "", "]", MILLION));
    let (_, msg) = eval(text).unwrap_err();
    assert!(msg.contains("JSON nested too deeply"), "{msg}");
}

// Regression: `genList f 9223372036854775807` panicked with "capacity overflow".
#[test]
fn gen_list_of_an_impossible_size_is_out_of_memory() {
    let (kind, msg) = eval("builtins.genList (x: x) 9223372036854775807".into()).unwrap_err();
    assert_eq!(kind, ErrorKind::Eval);
    assert!(msg.contains("error: out of memory"), "{msg}");
}

// Regression: `fromJSON "1e400"` gave infinity where Nix rejects the number.
#[test]
fn from_json_overflowing_float_errors_like_nix() {
    for (text, lit) in [
        ("1e400", "1e400"),
        ("-1e400", "-1e400"),
        ("[1E999]", "1E999"),
    ] {
        let (_, msg) = eval(format!("builtins.fromJSON \"{text}\"")).unwrap_err();
        let want = format!("[json.exception.out_of_range.406] number overflow parsing '{lit}'");
        assert!(msg.contains(&want), "{msg}");
    }
    assert_eq!(
        eval("builtins.fromJSON \"1e300\"".into()).unwrap(),
        "1e+300"
    );
}

#[test]
fn deep_seq_and_equality_of_a_million_deep_list_end() {
    let build = "builtins.foldl' (acc: x: [acc]) [] (builtins.genList (x: x) 1000000)";
    let (kind, msg) = eval(format!("builtins.deepSeq ({build}) 1")).unwrap_err();
    assert_eq!(kind, ErrorKind::StackOverflow, "{msg}");
    assert!(
        msg.contains("stack overflow; max-call-depth exceeded"),
        "{msg}"
    );
    match eval(format!("let a = {build}; b = {build}; in a == b")) {
        Ok(v) => assert_eq!(v, "true"),
        Err((kind, msg)) => assert_eq!(kind, ErrorKind::StackOverflow, "{msg}"),
    }
}

// Printing recurses like a call: a value nested past max-call-depth is Nix's error, not a
// crash (`foldl'` nests the list without thunks, so nothing else stops it first).
#[test]
fn printing_a_million_deep_list_is_max_call_depth() {
    let text = "builtins.foldl' (acc: x: [acc]) [] (builtins.genList (x: x) 1000000)".to_string();
    let r = run_with_stack(move || {
        let mut ev = Evaluator::builder().build();
        let v = ev.eval_string(&text, "/").unwrap();
        let v = ev.force(&v, Pos::NONE).unwrap();
        print::print_value_checked(&ev, &v).map_err(|e| (e.kind, e.render(false)))
    });
    let (kind, msg) = r.unwrap_err();
    assert_eq!(kind, ErrorKind::StackOverflow);
    assert!(
        msg.contains("stack overflow; max-call-depth exceeded"),
        "{msg}"
    );
}

// Found by fuzzing (scripts/fuzz): a missing attribute with a 300 kB name took 20 s
// computing "did you mean" suggestions (edit distance against every candidate).
#[test]
fn a_huge_missing_attribute_name_is_a_quick_error() {
    let name = format!("e{}", "mAt".repeat(100_000));
    let (_, msg) = eval(format!("builtins.{name}")).unwrap_err();
    assert!(msg.contains("error: attribute 'emAtmAt"), "{}", &msg[..200]);
    let (_, msg) = eval("{ elemAtt = 1; }.elemAt".into()).unwrap_err();
    assert!(msg.contains("Did you mean elemAtt?"), "{msg}");
}

// A lone CR ends a comment as it ends a line (Nix's lexer: `#[^\r\n]*`).
#[test]
fn cr_ends_comments_and_lines() {
    assert_eq!(eval("# comment\r1 + 1".into()).unwrap(), "2");
    let (_, msg) = eval("let\r  x = 1;\r  y = z;\rin x".into()).unwrap_err();
    assert!(msg.contains("«string»:3:7"), "{msg}");
}
