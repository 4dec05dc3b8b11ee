//! Nix's nesting limit, checked on the tokens before rnix sees them.
//!
//! Nix's parser is a bison GLR parser whose stack holds at most 10,000 entries; deeper input
//! fails with `memory exhausted` at the token that overflows it. rnix is a recursive-descent
//! parser with no such limit on lists, negations or right-associative operators, and both it
//! and the lowering slow down with the square of the depth, so a hostile file 10^6 levels deep
//! would take minutes (or the whole stack). This pass estimates bison's stack in one linear
//! walk over the tokens and stops where Nix would.
//!
//! The estimate counts what bison keeps on its stack until the enclosing construct ends: one
//! entry per open `(`, `${`, `"` or `''`, `!` and unary `-`, two per open `[`, `{` and `let`
//! (the token and the empty list or bindings reduced after it), two per `x:`, `with`/`assert`
//! head, right-associative `++`, `//` and `->` (the operand and the operator), and so on. It
//! matches Nix's position exactly for nested lists, parentheses, interpolations, negations
//! and `++` chains; for other constructs it is within a few entries of it.
//!
//! rnix's tokenizer is vendored (crates/rnix) so that this walk is linear too: it measured
//! the rest of a word of path characters at every token in it.
//!
//! This pass does not own syntax errors: anything it does not understand (unbalanced closers,
//! stray keywords) it skips, and rnix reports it.

use rnix::SyntaxKind::{self, *};

/// Bison's `YYMAXDEPTH` less the GLR parser's head room (`YYHEADROOM`).
const MAX_STACK: u32 = 10_000 - 2;

/// Below this many bytes no input can come near the limit in a way rnix cannot handle.
const MIN_LEN_TO_CHECK: usize = 4096;

/// What an open frame waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Paren,
    Bracket,
    Brace,
    Interpol,
    String,
    Let,
    /// `attrpath = …` up to `;` (also `inherit …;`).
    Binding,
    /// `with e` / `assert e` up to `;`.
    Head,
    /// `if c` up to `then`.
    If,
    /// `then e` up to `else`.
    Then,
}

impl Open {
    /// Frames a closer may pop through to reach its opener: only the ones that end
    /// implicitly (a binding, a `with` head, an `if` whose `then` has not come).
    fn soft(self) -> bool {
        matches!(self, Open::Binding | Open::Head | Open::If | Open::Then)
    }
}

#[cfg(test)]
fn exhausted_at(text: &str) -> Option<u32> {
    if text.len() < MIN_LEN_TO_CHECK {
        return None;
    }
    exhausted_in(&rnix::tokenize(text).collect::<Vec<_>>())
}

/// Parse `text`, unless Nix's parser would run out of stack on it: then the byte offset of
/// the token where it would. The tokens are made once, for this check and for rnix.
pub(super) fn parse(text: &str) -> Result<rnix::Parse<rnix::Root>, u32> {
    if text.len() < MIN_LEN_TO_CHECK {
        return Ok(rnix::Root::parse(text));
    }
    let tokens: Vec<_> = rnix::tokenize(text).collect();
    match exhausted_in(&tokens) {
        Some(offset) => Err(offset),
        None => Ok(rnix::Root::parse_tokens(tokens.into_iter())),
    }
}

/// The byte offset of the token at which Nix's parser would run out of stack, if any.
fn exhausted_in(tokens: &[rnix::Token<'_>]) -> Option<u32> {
    let mut st = Stack {
        frames: Vec::new(),
        level: 1,
    };
    let mut offset: u32 = 0;
    let mut prev = TOKEN_WHITESPACE;
    for &(kind, tok) in tokens {
        let at = offset;
        offset += tok.len() as u32;
        match kind {
            TOKEN_WHITESPACE | TOKEN_COMMENT => continue,
            TOKEN_L_PAREN => st.open(Open::Paren, 1),
            TOKEN_L_BRACK => st.open(Open::Bracket, 2),
            TOKEN_L_BRACE => st.open(Open::Brace, 2),
            TOKEN_LET => st.open(Open::Let, 2),
            TOKEN_INTERPOL_START => st.open(Open::Interpol, 1),
            TOKEN_STRING_START => st.open(Open::String, 1),
            TOKEN_ASSIGN | TOKEN_INHERIT => st.open(Open::Binding, 2),
            TOKEN_WITH | TOKEN_ASSERT => st.open(Open::Head, 2),
            TOKEN_IF => st.open(Open::If, 2),
            TOKEN_R_PAREN => {
                st.close(Open::Paren, 0);
            }
            TOKEN_R_BRACK => {
                st.close(Open::Bracket, 0);
            }
            TOKEN_R_BRACE => {
                st.close(Open::Brace, 0);
            }
            TOKEN_INTERPOL_END => {
                st.close(Open::Interpol, 0);
            }
            TOKEN_STRING_END => {
                st.close(Open::String, 0);
            }
            // `let … in`: `let`, the bindings and `in` stay until the body ends.
            TOKEN_IN => {
                st.close(Open::Let, 3);
            }
            TOKEN_SEMICOLON => match st.frames.last() {
                // `with e;`: the three stay until the body ends.
                Some((Open::Head, _)) => {
                    st.close(Open::Head, 3);
                }
                _ => {
                    st.close(Open::Binding, 0);
                }
            },
            TOKEN_THEN => st.then(),
            // `if c then e else`: the five stay until the else branch ends.
            TOKEN_ELSE => {
                st.close(Open::Then, 5);
            }
            TOKEN_COLON | TOKEN_CONCAT | TOKEN_UPDATE | TOKEN_IMPLICATION => st.level += 2,
            TOKEN_INVERT => st.level += 1,
            TOKEN_SUB if !ends_operand(prev) => st.level += 1,
            _ => {}
        }
        if st.level > MAX_STACK {
            return Some(at);
        }
        prev = kind;
    }
    None
}

/// The estimated parser stack: its height, and the frames still open with the height
/// before each.
struct Stack {
    frames: Vec<(Open, u32)>,
    level: u32,
}

impl Stack {
    /// `if c then`: the `if` frame becomes a `then` frame, with `if c then` on the stack.
    fn then(&mut self) {
        if self.close(Open::If, 0) {
            self.open(Open::Then, 4);
        }
    }

    fn open(&mut self, what: Open, weight: u32) {
        self.frames.push((what, self.level));
        self.level += weight;
    }

    /// Pop to the innermost frame opened by `what`, through soft frames only; the height goes
    /// back to what it was before that frame, plus `keep`. Returns whether it was found.
    fn close(&mut self, what: Open, keep: u32) -> bool {
        let Some(i) = self
            .frames
            .iter()
            .rposition(|(o, _)| *o == what || !o.soft())
            .filter(|i| self.frames[*i].0 == what)
        else {
            return false;
        };
        self.level = self.frames[i].1 + keep;
        self.frames.truncate(i);
        true
    }
}

/// Whether a `-` after this token is binary (the token ends an operand).
fn ends_operand(prev: SyntaxKind) -> bool {
    matches!(
        prev,
        TOKEN_IDENT
            | TOKEN_INTEGER
            | TOKEN_FLOAT
            | TOKEN_PATH_ABS
            | TOKEN_PATH_HOME
            | TOKEN_PATH_REL
            | TOKEN_PATH_SEARCH
            | TOKEN_URI
            | TOKEN_R_PAREN
            | TOKEN_R_BRACK
            | TOKEN_R_BRACE
            | TOKEN_STRING_END
            | TOKEN_INTERPOL_END
            | TOKEN_CUR_POS
            | TOKEN_OR
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, mid: &str, close: &str, n: usize) -> String {
        format!("{}{mid}{}", open.repeat(n), close.repeat(n))
    }

    /// Byte offset → 1-based column on a one-line input.
    fn col(text: &str) -> Option<u32> {
        exhausted_at(text).map(|o| o + 1)
    }

    // The columns are the ones Nix 2.8 prints for these inputs.
    #[test]
    fn matches_nix_for_lists_parens_interpolations_and_concat() {
        assert_eq!(col(&nested("[", "", "]", 20_000)), Some(4999));
        assert_eq!(col(&nested("(", "1", ")", 20_000)), Some(9998));
        assert_eq!(col(&nested("\"${", "1", "}\"", 20_000)), Some(14996));
        assert_eq!(col(&format!("{}[]", "[] ++ ".repeat(100_000))), Some(29989));
    }

    #[test]
    fn nix_accepts_what_nix_accepts() {
        assert_eq!(col(&nested("[", "", "]", 4_000)), None);
        assert_eq!(col(&nested("(", "1", ")", 9_000)), None);
        assert_eq!(col(&format!("{}1", "x: ".repeat(4_000))), None);
        assert_eq!(col(&format!("{}1", "-".repeat(9_000))), None);
        // Siblings do not add up: only nesting does.
        let flat = format!(
            "{{ {} }}",
            "a = [ (x: 1) { b = 2; } ] ++ c; ".repeat(10_000)
        );
        assert_eq!(col(&flat), None);
        let ifs = format!("[ {} ]", "(if a then b ++ c else d) ".repeat(10_000));
        assert_eq!(col(&ifs), None);
        let lets = format!("[ {} ]", "(let a = with b; c; in a) ".repeat(10_000));
        assert_eq!(col(&lets), None);
    }

    #[test]
    fn deep_input_of_every_kind_stops() {
        let n = 1_000_000;
        for text in [
            nested("[", "", "]", n),
            nested("(", "1", ")", n),
            nested("{a=", "1", ";}", n),
            nested("\"${", "1", "}\"", n),
            nested("''${", "1", "}''", n),
            nested("let a = ", "1", "; in a", n),
            format!("{}1", "x: ".repeat(n)),
            format!("{}1", "-".repeat(n)),
            format!("{}true", "!".repeat(n)),
            format!("{}1", "with a; ".repeat(n)),
            format!("{}1", "if a then b else ".repeat(n)),
            format!("{}a", "a // ".repeat(n)),
            format!("{}a", "a ++ ".repeat(n)),
            format!("{}1", "a: ".repeat(n)),
            format!("{}1", "assert a; ".repeat(n)),
        ] {
            assert!(exhausted_at(&text).is_some(), "{}", &text[..20]);
        }
    }
}
