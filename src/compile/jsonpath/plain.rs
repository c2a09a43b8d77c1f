//! The fast path of a one-pass JSONPath selection ([`super::JsonPath::select_with`]):
//! a body written plainly is checked and walked here byte by byte, without serde's
//! visitor machinery, and only the selected node is handed on.
//!
//! "Plainly" means: strings of printable ASCII without escapes, numbers without an
//! exponent and with at most 18 digits on either side of the point, the literals,
//! and nesting at most [`MAX_DEPTH`] deep. Such text is JSON to `serde_json` exactly
//! when it follows the grammar, which is all this scan checks. Anything else (an
//! escape, a byte outside ASCII, `1e5`, a grammar error, a body cut short) makes the
//! scan give up ([`Unsure`]) and `serde_json` reads the body from the start, so which
//! bodies are JSON, and why not, never depends on which path read them.

use std::ops::Range;

use super::Step;

/// Deepest nesting walked here; `serde_json` refuses documents at 128. One less than
/// a word's bits, so that [`Scan::skip`]'s open containers and their marker fit in one.
const MAX_DEPTH: u32 = 63;

/// Most digits taken before or after a number's point: any such number is in range
/// for `serde_json` (whose limit is an `f64`'s).
const MAX_DIGITS: usize = 18;

/// The body is not written plainly: `serde_json` must judge it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unsure;

/// The node a plain scan selected.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Node<'a> {
    /// A string's text, without its quotes (nothing in it is escaped).
    Str(&'a str),
    /// Any other value: where its text lies in the body.
    Other(Range<usize>),
}

/// What `steps` (none counting from an array's end) select in `body`: `Ok(None)` when
/// nothing; [`Unsure`] when the body is not written plainly.
pub(super) fn select<'a>(body: &'a [u8], steps: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
    let mut scan = Scan {
        body,
        at: 0,
        depth: 0,
    };
    let node = scan.walk(steps)?;
    scan.space();
    if scan.at != body.len() {
        return Err(Unsure);
    }
    Ok(node)
}

/// Bytes a plain string holds: printable ASCII and DEL, but not `"` or `\`.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x80 {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// What a byte starts where a value is due: one load and one jump dispatch every
/// value [`Scan::skip`] passes over, rather than a chain of comparisons.
#[derive(Clone, Copy)]
enum Class {
    Quote,
    Open,
    True,
    False,
    Null,
    Digit,
    Minus,
    Other,
}

static CLASS: [Class; 256] = {
    let mut t = [Class::Other; 256];
    t[b'"' as usize] = Class::Quote;
    t[b'{' as usize] = Class::Open;
    t[b'[' as usize] = Class::Open;
    t[b't' as usize] = Class::True;
    t[b'f' as usize] = Class::False;
    t[b'n' as usize] = Class::Null;
    t[b'-' as usize] = Class::Minus;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = Class::Digit;
        d += 1;
    }
    t
};

#[derive(Clone, Copy)]
struct Scan<'a> {
    body: &'a [u8],
    at: usize,
    /// The containers open around `at`.
    depth: u32,
}

impl<'a> Scan<'a> {
    #[inline(always)]
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.body.get(self.at) {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn byte(&self) -> Result<u8, Unsure> {
        self.body.get(self.at).copied().ok_or(Unsure)
    }

    /// The next byte that is not space, `at` on it. Bodies are mostly written without
    /// space, so a byte above `' '` is taken at once; a control byte is never where a
    /// token may start, so it is [`Unsure`] here rather than at the caller.
    #[inline(always)]
    fn token(&mut self) -> Result<u8, Unsure> {
        // The usual case on its own before the loop: the compiler makes every token
        // a few instructions cheaper so.
        if let Some(&b) = self.body.get(self.at)
            && b > b' '
        {
            return Ok(b);
        }
        loop {
            let b = self.byte()?;
            if b > b' ' {
                return Ok(b);
            }
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Err(Unsure);
            }
            self.at += 1;
        }
    }

    /// Reads one value on the query's path, `steps` being the steps left: none left,
    /// it is the selected node. Only the containers on the path are walked here,
    /// member by member; everything else is [`Scan::skip`]ped.
    fn walk(&mut self, steps: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
        let Some((step, rest)) = steps.split_first() else {
            return self.leaf().map(Some);
        };
        match (self.token()?, step) {
            (b'{', Step::Name(name)) => self.object(name.as_bytes(), rest),
            (b'[', Step::Index(i)) => self.array(usize::try_from(*i).ok(), rest),
            _ => self.skip().map(|()| None),
        }
    }

    /// The selected node.
    #[inline(always)]
    fn leaf(&mut self) -> Result<Node<'a>, Unsure> {
        if self.token()? == b'"' {
            // Plain bytes are ASCII: this cannot fail.
            let text = std::str::from_utf8(self.string()?).map_err(|_| Unsure)?;
            return Ok(Node::Str(text));
        }
        let start = self.at;
        self.skip()?;
        Ok(Node::Other(start..self.at))
    }

    /// The members of the object at `at`; the one named `name` is walked with `rest`.
    /// A repeated member replaces the earlier one, as in a parsed `Value`.
    fn object(&mut self, name: &[u8], rest: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
        let mut found = None;
        if self.enter(b'}')? {
            return Ok(found);
        }
        loop {
            if same(self.key()?, name) {
                found = self.on_path(rest)?;
            } else {
                self.skip()?;
            }
            if self.after_item(b'}')? {
                return Ok(found);
            }
        }
    }

    /// The elements of the array at `at`; the one at `want` is walked with `rest`.
    fn array(&mut self, want: Option<usize>, rest: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
        let mut found = None;
        if self.enter(b']')? {
            return Ok(found);
        }
        let mut index = 0usize;
        loop {
            if Some(index) == want {
                found = self.on_path(rest)?;
            } else {
                self.skip()?;
            }
            if self.after_item(b']')? {
                return Ok(found);
            }
            index += 1;
        }
    }

    /// Steps into the container at `at`; true when it is empty (`close` follows at
    /// once), which is then passed over too.
    #[inline(always)]
    fn enter(&mut self, close: u8) -> Result<bool, Unsure> {
        if self.depth == MAX_DEPTH {
            return Err(Unsure);
        }
        self.depth += 1;
        self.at += 1;
        let empty = self.token()? == close;
        if empty {
            self.at += 1;
            self.depth -= 1;
        }
        Ok(empty)
    }

    /// The member or element a step selected, `rest` steps left: the last step's node
    /// is read here rather than by a call.
    #[inline(always)]
    fn on_path(&mut self, rest: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
        if rest.is_empty() {
            self.leaf().map(Some)
        } else {
            self.walk(rest)
        }
    }

    /// A member's key, its colon and the space after it.
    #[inline(always)]
    fn key(&mut self) -> Result<&'a [u8], Unsure> {
        if self.token()? != b'"' {
            return Err(Unsure);
        }
        let key = self.string()?;
        if self.token()? != b':' {
            return Err(Unsure);
        }
        self.at += 1;
        Ok(key)
    }

    /// After a member or element: a comma (false: another follows) or `close`, which
    /// steps out of the container.
    #[inline(always)]
    fn after_item(&mut self, close: u8) -> Result<bool, Unsure> {
        let b = self.token()?;
        self.at += 1;
        if b == b',' {
            Ok(false)
        } else if b == close {
            self.depth -= 1;
            Ok(true)
        } else {
            Err(Unsure)
        }
    }

    /// Checks and passes over one value off the path, in one loop rather than by
    /// recursion: which open containers are objects is kept as bits of a word
    /// ([`MAX_DEPTH`] of them at most).
    fn skip(&mut self) -> Result<(), Unsure> {
        // Worked on a copy, which the compiler keeps in registers, rather than
        // through `self`, whose position it would store at every byte.
        let mut scan = *self;
        scan.skip_here()?;
        *self = scan;
        Ok(())
    }

    fn skip_here(&mut self) -> Result<(), Unsure> {
        // The containers opened here, innermost lowest, 1 for an object, above a
        // marker bit: the value is over when only the marker is left. Fewer words
        // live in the loop than with a depth beside the bits.
        let mut open = 1u64;
        let limit = 1u64 << (MAX_DEPTH - self.depth);
        loop {
            // A value.
            let b = self.token()?;
            match CLASS[usize::from(b)] {
                Class::Quote => {
                    self.string()?;
                }
                Class::Open => {
                    if open >= limit {
                        return Err(Unsure);
                    }
                    self.at += 1;
                    let object = b == b'{';
                    open = open << 1 | u64::from(object);
                    // `]` and `}` follow `[` and `{` by two.
                    if self.token()? != b + 2 {
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                    self.at += 1;
                    open >>= 1;
                }
                Class::True => self.literal(4, b"true")?,
                Class::False => self.literal(5, b"alse")?,
                Class::Null => self.literal(4, b"null")?,
                Class::Digit => self.unsigned(b, self.at)?,
                Class::Minus => self.negative()?,
                Class::Other => return Err(Unsure),
            }
            // What follows it: the next member or element, or the end of containers.
            loop {
                if open == 1 {
                    return Ok(());
                }
                let b = self.token()?;
                self.at += 1;
                if b == b',' {
                    if open & 1 == 1 {
                        self.key()?;
                    }
                    break;
                }
                // `]`, or `}` (bit 5 more) in an object.
                if b != b']' | (open as u8 & 1) << 5 {
                    return Err(Unsure);
                }
                open >>= 1;
            }
        }
    }

    /// A string at `at` (its opening quote): its plain bytes.
    #[inline(always)]
    fn string(&mut self) -> Result<&'a [u8], Unsure> {
        // Indexed rather than through an iterator's `position`, whose loop the
        // compiler made longer.
        let start = self.at + 1;
        let mut at = start;
        loop {
            let b = *self.body.get(at).ok_or(Unsure)?;
            if !PLAIN[usize::from(b)] {
                if b != b'"' {
                    return Err(Unsure);
                }
                break;
            }
            at += 1;
        }
        // Without this barrier the compiler carries two or three copies of `at`
        // (offset for the bounds checks after the string) through the loop, one
        // instruction a byte each: the loop took 10 instructions a byte, now 6.
        let at = std::hint::black_box(at);
        self.at = at + 1;
        Ok(&self.body[start..at])
    }

    /// `true`, `false` or `null` at `at`, `last4` being its last four bytes (the
    /// `f` of `false` was the dispatch's): compared as one word.
    #[inline(always)]
    fn literal(&mut self, len: usize, last4: &[u8; 4]) -> Result<(), Unsure> {
        let end = self.at + len;
        if word(self.body, end - 4) != Some(u32::from_ne_bytes(*last4)) {
            return Err(Unsure);
        }
        self.at = end;
        Ok(())
    }

    /// A number at `at` after its `-`, if any: [`Scan::unsigned`] with `at` one past.
    #[inline(always)]
    fn negative(&mut self) -> Result<(), Unsure> {
        let at = self.at + 1;
        match self.body.get(at) {
            Some(&lead @ b'0'..=b'9') => self.unsigned(lead, at),
            _ => Err(Unsure),
        }
    }

    /// A number's digits from `at`, whose byte `lead` is a digit: `0` or digits not
    /// starting with `0`, then maybe a point and digits. What follows is left to the
    /// caller, which takes only a comma, a closer, space or the end: so a digit after
    /// a leading `0`, or an exponent's `e`, is refused there.
    #[inline(always)]
    fn unsigned(&mut self, lead: u8, mut at: usize) -> Result<(), Unsure> {
        at += 1;
        if lead != b'0' {
            let start = at;
            while let Some(b'0'..=b'9') = self.body.get(at) {
                at += 1;
            }
            if at - start >= MAX_DIGITS {
                return Err(Unsure);
            }
        }
        if self.body.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while let Some(b'0'..=b'9') = self.body.get(at) {
                at += 1;
            }
            if at == start || at - start > MAX_DIGITS {
                return Err(Unsure);
            }
        }
        self.at = at;
        Ok(())
    }
}

/// `a == b` for a key against a name, without the call to `memcmp` that slice
/// equality makes for keys of usual lengths: up to 8 bytes are compared as two
/// words of 4 that may overlap.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=8 => word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4),
        _ => a == b,
    }
}

/// The 4 bytes of `s` at `at`.
#[inline(always)]
fn word(s: &[u8], at: usize) -> Option<u32> {
    let bytes = s.get(at..at + 4)?;
    <[u8; 4]>::try_from(bytes).ok().map(u32::from_ne_bytes)
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
