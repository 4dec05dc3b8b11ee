//! Compile-time scopes: which names each enclosing environment binds, so variables resolve
//! to (level, slot) pairs when lowering, and `with` is the only dynamic lookup.

use rustc_hash::FxHashMap;

use crate::symbol::Sym;

/// One compile-time scope; each corresponds to one run-time environment.
pub enum Scope {
    /// Names bound statically (function arguments, `let`, `rec`, the builtins).
    Static(FxHashMap<Sym, u32>),
    /// A `with`: unknown names, looked up at run time.
    With,
}

/// How a variable resolved.
pub enum Resolved {
    /// Bound statically.
    Static { level: u32, slot: u32, global: bool },
    /// From the enclosing `with`s (levels innermost first).
    With(Vec<u32>),
    /// Not bound anywhere.
    Undefined,
}

/// The stack of scopes, outermost (the builtins) first.
pub struct Scopes {
    stack: Vec<Scope>,
}

impl Scopes {
    /// Start with the global scope.
    pub fn new(global: FxHashMap<Sym, u32>) -> Scopes {
        Scopes {
            stack: vec![Scope::Static(global)],
        }
    }

    /// Enter a scope.
    pub fn push(&mut self, s: Scope) {
        self.stack.push(s);
    }

    /// Leave the innermost scope.
    pub fn pop(&mut self) {
        self.stack.pop();
    }

    /// Leave the innermost scope, returning it.
    pub fn pop_scope(&mut self) -> Option<Scope> {
        self.stack.pop()
    }

    /// Resolve `name` as seen from the innermost scope.
    pub fn resolve(&self, name: Sym) -> Resolved {
        let mut withs = Vec::new();
        let n = self.stack.len();
        for (level, scope) in self.stack.iter().rev().enumerate() {
            match scope {
                Scope::With => withs.push(level as u32),
                Scope::Static(names) => {
                    if let Some(&slot) = names.get(&name) {
                        return Resolved::Static {
                            level: level as u32,
                            slot,
                            global: level == n - 1,
                        };
                    }
                }
            }
        }
        if withs.is_empty() {
            Resolved::Undefined
        } else {
            Resolved::With(withs)
        }
    }
}
