//! Syntax errors in Nix's (bison's) words. rnix recovers from errors and reports them in
//! its own terms; this finds the first one, the token it is about, and phrases it as Nix
//! does: `syntax error, unexpected 'then'`, with the short "expecting …" lists bison prints
//! where the grammar leaves only a few choices.

use rnix::SyntaxKind::{self, *};
use rnix::{ParseError, Root, SyntaxToken, TextSize};

/// A syntax error: Nix's message and the byte offset it points at.
pub struct SyntaxError {
    /// The message.
    pub msg: String,
    /// Byte offset.
    pub offset: u32,
}

fn token_name(kind: SyntaxKind, text: &str) -> &'static str {
    match kind {
        TOKEN_IF => "'if'",
        TOKEN_THEN => "'then'",
        TOKEN_ELSE => "'else'",
        TOKEN_ASSERT => "'assert'",
        TOKEN_WITH => "'with'",
        TOKEN_LET => "'let'",
        TOKEN_IN => "'in'",
        TOKEN_REC => "'rec'",
        TOKEN_INHERIT => "'inherit'",
        TOKEN_OR => "'or'",
        TOKEN_AND_AND => "'&&'",
        TOKEN_OR_OR => "'||'",
        TOKEN_EQUAL => "'=='",
        TOKEN_NOT_EQUAL => "'!='",
        TOKEN_LESS => "'<'",
        TOKEN_LESS_OR_EQ => "'<='",
        TOKEN_MORE => "'>'",
        TOKEN_MORE_OR_EQ => "'>='",
        TOKEN_IMPLICATION => "'->'",
        TOKEN_UPDATE => "'//'",
        TOKEN_CONCAT => "'++'",
        TOKEN_ADD => "'+'",
        TOKEN_SUB => "'-'",
        TOKEN_MUL => "'*'",
        TOKEN_DIV => "'/'",
        TOKEN_INVERT => "'!'",
        TOKEN_QUESTION => "'?'",
        TOKEN_ASSIGN => "'='",
        TOKEN_COLON => "':'",
        TOKEN_SEMICOLON => "';'",
        TOKEN_COMMA => "','",
        TOKEN_DOT => "'.'",
        TOKEN_AT => "'@'",
        TOKEN_ELLIPSIS => "'...'",
        TOKEN_L_BRACE => "'{'",
        TOKEN_R_BRACE | TOKEN_INTERPOL_END => "'}'",
        TOKEN_L_BRACK => "'['",
        TOKEN_R_BRACK => "']'",
        TOKEN_L_PAREN => "'('",
        TOKEN_R_PAREN => "')'",
        TOKEN_INTERPOL_START => "'${'",
        TOKEN_PIPE_LEFT => "'<|'",
        TOKEN_PIPE_RIGHT => "'|>'",
        TOKEN_IDENT => "identifier",
        TOKEN_INTEGER => "integer literal",
        TOKEN_FLOAT => "floating-point literal",
        TOKEN_PATH_ABS | TOKEN_PATH_REL => "path",
        TOKEN_PATH_HOME => "'~/…' path",
        TOKEN_PATH_SEARCH => "'<…>' path",
        TOKEN_URI => "URI",
        TOKEN_STRING_START if text == "''" => "start of an indented string",
        TOKEN_STRING_START => "'\"'",
        TOKEN_STRING_END if text == "''" => "end of an indented string",
        TOKEN_STRING_END => "'\"'",
        TOKEN_STRING_CONTENT => "string",
        _ => "invalid token",
    }
}

fn significant(t: &SyntaxToken) -> bool {
    !matches!(t.kind(), TOKEN_WHITESPACE | TOKEN_COMMENT)
}

/// The first syntax error in `parse`, in Nix's words.
pub fn first_error(parse: &rnix::Parse<Root>, text: &str) -> Option<SyntaxError> {
    // rnix reports every token it could not place; without errors there is nothing to find
    // (and walking all tokens of a large file is not free).
    if parse.errors().is_empty() {
        return None;
    }
    let root = parse.syntax();
    let tokens: Vec<SyntaxToken> = root
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .collect();

    // Tokenizer errors (rnix marks them TOKEN_ERROR) and parser errors: Nix stops at the
    // first in text order.
    // An indented string where an attribute name must follow: bison stops at its start.
    for (i, t) in tokens.iter().enumerate() {
        if t.kind() == TOKEN_STRING_START && t.text() == "''" {
            let prev = tokens[..i]
                .iter()
                .rev()
                .find(|t| significant(t))
                .map(|p| p.kind());
            if matches!(prev, Some(TOKEN_DOT) | Some(TOKEN_QUESTION)) {
                let at = t.text_range().start();
                let earlier = parse.errors().iter().any(|e| match e {
                    ParseError::Unexpected(r)
                    | ParseError::UnexpectedExtra(r)
                    | ParseError::UnexpectedWanted(_, r, _) => r.start() < at,
                    _ => false,
                });
                if !earlier {
                    return Some(SyntaxError {
                        msg: "syntax error, unexpected start of an indented string, expecting identifier or 'or' or '${' or '\"'".into(),
                        offset: u32::from(at),
                    });
                }
            }
        }
    }
    let first_bad_token = tokens.iter().position(|t| t.kind() == TOKEN_ERROR);
    let mut candidate: Option<(u32, SyntaxError)> = None;

    if let Some(i) = first_bad_token {
        let t = &tokens[i];
        let start = u32::from(t.text_range().start());
        let err = token_error(t, &tokens, i, text);
        candidate = Some((start, err));
    }

    for err in parse.errors() {
        let (offset, at) = match err {
            ParseError::Unexpected(r)
            | ParseError::UnexpectedExtra(r)
            | ParseError::UnexpectedDoubleBind(r) => (u32::from(r.start()), Some(r.start())),
            ParseError::UnexpectedWanted(_, r, _) => (u32::from(r.start()), Some(r.start())),
            ParseError::UnexpectedEOF | ParseError::UnexpectedEOFWanted(_) => {
                (text.len() as u32, None)
            }
            ParseError::DuplicatedArgs(..) => continue,
            ParseError::RecursionLimitExceeded => {
                // rnix gives up 10,000 expressions deep and swallows the rest of the file into
                // an error node; Nix goes on to its own limit (`lower::depth`).
                let offset = recursion_limit_offset(&root, text);
                if candidate.as_ref().is_some_and(|(o, _)| *o <= offset) {
                    break;
                }
                let msg = format!(
                    "expression nested more than {RNIX_MAX_DEPTH} levels deep, \
                     which envy's parser does not support"
                );
                candidate = Some((offset, SyntaxError { msg, offset }));
                break;
            }
            _ => (0, None),
        };
        if candidate.as_ref().is_some_and(|(o, _)| *o <= offset) {
            break;
        }
        let e = match at {
            None => {
                let expecting = if let Some(ParseError::UnexpectedEOFWanted(w)) = Some(err)
                    && w.len() == 1
                    && w[0] == TOKEN_STRING_END
                {
                    ", expecting '\"'"
                } else {
                    ""
                };
                SyntaxError {
                    msg: format!("syntax error, unexpected end of file{expecting}"),
                    offset: text.len() as u32,
                }
            }
            Some(at) => unexpected_at(&tokens, at, text),
        };
        let off = e.offset;
        candidate = Some((off, e));
        break;
    }
    candidate.map(|(_, e)| e)
}

/// How deep rnix parses expressions (its `parse_expr` recursion limit).
const RNIX_MAX_DEPTH: u32 = 10_000;

/// Where rnix stopped on its recursion limit: the start of the outermost error node that
/// runs to the end of the text.
fn recursion_limit_offset(root: &rnix::SyntaxNode, text: &str) -> u32 {
    root.descendants()
        .find(|n| n.kind() == NODE_ERROR && usize::from(n.text_range().end()) == text.len())
        .map_or(text.len() as u32, |n| u32::from(n.text_range().start()))
}

fn token_error(t: &SyntaxToken, tokens: &[SyntaxToken], i: usize, text: &str) -> SyntaxError {
    let s = t.text();
    let start = u32::from(t.text_range().start());
    let end = u32::from(t.text_range().end());
    let prev = tokens[..i].iter().rev().find(|t| significant(t));
    let in_string =
        prev.is_some_and(|p| matches!(p.kind(), TOKEN_STRING_START | TOKEN_STRING_CONTENT));
    if in_string || (end as usize == text.len() && s.is_empty()) {
        let indented = tokens[..i]
            .iter()
            .rev()
            .find(|t| t.kind() == TOKEN_STRING_START)
            .is_some_and(|t| t.text() == "''");
        let expecting = if indented { "" } else { ", expecting '\"'" };
        return SyntaxError {
            msg: format!("syntax error, unexpected end of file{expecting}"),
            offset: text.len() as u32,
        };
    }
    if (s.starts_with('/') || s.starts_with("./") || s.starts_with("~/") || s.contains('/'))
        && s.ends_with('/')
    {
        return SyntaxError {
            msg: "path has a trailing slash".into(),
            offset: end,
        };
    }
    if s.starts_with("/*") {
        return SyntaxError {
            msg: "unterminated comment".into(),
            offset: start,
        };
    }
    SyntaxError {
        msg: "syntax error, unexpected invalid token".into(),
        offset: start,
    }
}

fn unexpected_at(tokens: &[SyntaxToken], at: TextSize, text: &str) -> SyntaxError {
    let Some(i) = tokens
        .iter()
        .position(|t| t.text_range().start() >= at && significant(t))
    else {
        return SyntaxError {
            msg: "syntax error, unexpected end of file".into(),
            offset: text.len() as u32,
        };
    };
    let t = &tokens[i];
    let name = token_name(t.kind(), t.text());
    let prev = tokens[..i]
        .iter()
        .rev()
        .find(|t| significant(t))
        .map(|p| p.kind());
    let expecting = match prev {
        // After `.` or `?`: an attribute name must follow.
        Some(TOKEN_DOT) | Some(TOKEN_QUESTION) => ", expecting identifier or 'or' or '${' or '\"'",
        // Right after `{`, once bison has reduced the empty bindings, only `inherit` is left.
        Some(TOKEN_L_BRACE)
            if !matches!(
                t.kind(),
                TOKEN_IDENT
                    | TOKEN_OR
                    | TOKEN_STRING_START
                    | TOKEN_INTERPOL_START
                    | TOKEN_INHERIT
                    | TOKEN_R_BRACE
                    | TOKEN_ELLIPSIS
            ) =>
        {
            ", expecting 'inherit'"
        }
        _ => "",
    };
    SyntaxError {
        msg: format!("syntax error, unexpected {name}{expecting}"),
        offset: u32::from(t.text_range().start()),
    }
}
