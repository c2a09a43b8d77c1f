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

/// Deepest nesting walked here; `serde_json` refuses documents at 128.
const MAX_DEPTH: u32 = 64;

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

    /// Reads one value on the query's path, `steps` being the steps left: none left,
    /// it is the selected node. Only the containers on the path are walked here,
    /// member by member; everything else is [`Scan::skip`]ped.
    fn walk(&mut self, steps: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
        self.space();
        let Some((step, rest)) = steps.split_first() else {
            if self.byte()? == b'"' {
                // Plain bytes are ASCII: this cannot fail.
                let text = std::str::from_utf8(self.string()?).map_err(|_| Unsure)?;
                return Ok(Some(Node::Str(text)));
            }
            let start = self.at;
            self.skip()?;
            return Ok(Some(Node::Other(start..self.at)));
        };
        match (self.byte()?, step) {
            (b'{', Step::Name(name)) => self.object(name.as_bytes(), rest),
            (b'[', Step::Index(i)) => self.array(usize::try_from(*i).ok(), rest),
            _ => self.skip().map(|()| None),
        }
    }

    /// The members of the object at `at`; the one named `name` is walked with `rest`.
    /// A repeated member replaces the earlier one, as in a parsed `Value`.
    fn object(&mut self, name: &[u8], rest: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
        self.open()?;
        self.space();
        if self.byte()? == b'}' {
            self.at += 1;
            self.depth -= 1;
            return Ok(None);
        }
        let mut found = None;
        loop {
            if self.key()? == name {
                found = self.walk(rest)?;
            } else {
                self.skip()?;
            }
            if self.after_item(b'}')? {
                self.depth -= 1;
                return Ok(found);
            }
        }
    }

    /// The elements of the array at `at`; the one at `want` is walked with `rest`.
    fn array(&mut self, want: Option<usize>, rest: &[Step]) -> Result<Option<Node<'a>>, Unsure> {
        self.open()?;
        self.space();
        if self.byte()? == b']' {
            self.at += 1;
            self.depth -= 1;
            return Ok(None);
        }
        let mut found = None;
        let mut index = 0usize;
        loop {
            if Some(index) == want {
                found = self.walk(rest)?;
            } else {
                self.skip()?;
            }
            if self.after_item(b']')? {
                self.depth -= 1;
                return Ok(found);
            }
            index += 1;
        }
    }

    /// Steps into the container at `at`.
    #[inline(always)]
    fn open(&mut self) -> Result<(), Unsure> {
        if self.depth == MAX_DEPTH {
            return Err(Unsure);
        }
        self.depth += 1;
        self.at += 1;
        Ok(())
    }

    /// A member's key, its colon and the space after it.
    #[inline(always)]
    fn key(&mut self) -> Result<&'a [u8], Unsure> {
        self.space();
        if self.byte()? != b'"' {
            return Err(Unsure);
        }
        let key = self.string()?;
        self.space();
        if self.byte()? != b':' {
            return Err(Unsure);
        }
        self.at += 1;
        Ok(key)
    }

    /// After a member or element: a comma (false: another follows) or `close`.
    #[inline(always)]
    fn after_item(&mut self, close: u8) -> Result<bool, Unsure> {
        self.space();
        let b = self.byte()?;
        self.at += 1;
        if b == close {
            Ok(true)
        } else if b == b',' {
            Ok(false)
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
        let outer = self.depth;
        let mut objects = 0u64;
        loop {
            // A value.
            self.space();
            match self.byte()? {
                b'"' => {
                    self.string()?;
                }
                open @ (b'{' | b'[') => {
                    self.open()?;
                    let object = open == b'{';
                    objects = objects << 1 | u64::from(object);
                    self.space();
                    if self.byte()? != if object { b'}' } else { b']' } {
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                    self.at += 1;
                    self.depth -= 1;
                    objects >>= 1;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(Unsure),
            }
            // What follows it: the next member or element, or the end of containers.
            loop {
                if self.depth == outer {
                    return Ok(());
                }
                let object = objects & 1 == 1;
                if !self.after_item(if object { b'}' } else { b']' })? {
                    if object {
                        self.key()?;
                    }
                    break;
                }
                self.depth -= 1;
                objects >>= 1;
            }
        }
    }

    /// A string at `at` (its opening quote): its plain bytes.
    #[inline(always)]
    fn string(&mut self) -> Result<&'a [u8], Unsure> {
        let start = self.at + 1;
        let rest = self.body.get(start..).ok_or(Unsure)?;
        let len = rest
            .iter()
            .position(|&b| !PLAIN[usize::from(b)])
            .ok_or(Unsure)?;
        if rest[len] != b'"' {
            return Err(Unsure);
        }
        self.at = start + len + 1;
        Ok(&rest[..len])
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Result<(), Unsure> {
        if !self.body[self.at..].starts_with(word) {
            return Err(Unsure);
        }
        self.at += word.len();
        Ok(())
    }

    /// `-`, then `0` or digits not starting with `0`, then maybe a point and digits
    /// (an exponent is not plain: its `e` is a byte out of place to the caller).
    #[inline(always)]
    fn number(&mut self) -> Result<(), Unsure> {
        if self.byte()? == b'-' {
            self.at += 1;
        }
        let whole = self.digits();
        if whole == 0 || whole > MAX_DIGITS || (whole > 1 && self.body[self.at - whole] == b'0') {
            return Err(Unsure);
        }
        if self.body.get(self.at) == Some(&b'.') {
            self.at += 1;
            let fraction = self.digits();
            if fraction == 0 || fraction > MAX_DIGITS {
                return Err(Unsure);
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.body.get(self.at) {
            self.at += 1;
        }
        self.at - start
    }
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
