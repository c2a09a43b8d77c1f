//! Data feeders: the CSV header is read at compile time so `{{ feeder.column }}` can
//! be checked, and the whole file is hashed there, in the same read, for the plan's
//! fingerprint; the rows are loaded by the engine when the run starts.

use sha2::Digest;

use crate::plan::de::SpMap;
use crate::plan::raw::{RawFeeder, RawPick};

use super::Compiler;
use super::graph::{Feeder, Pick};

impl Compiler<'_> {
    pub(super) fn feeders(&mut self, data: &SpMap<RawFeeder>) {
        for (name, f) in &data.0 {
            let name_text = &name.value;
            if !super::is_name(name_text) {
                self.error_help(
                    name.pos,
                    format!("`{name_text}` is not a valid feeder name"),
                    super::NAME_HELP,
                );
                continue;
            }
            let csv = &f.value.csv;
            let path = super::plan_dir(self.path).join(&csv.value);
            let (columns, digest) = match read_data(&path) {
                Ok(c) => c,
                Err(m) => {
                    self.error_help(
                        csv.pos,
                        format!("data file `{}`: {m}", csv.value),
                        "the path is relative to the plan file; the first line names the columns",
                    );
                    continue;
                }
            };
            let pick = match f.value.pick.as_ref().map(|p| p.value) {
                None | Some(RawPick::Sequential) => Pick::Sequential,
                Some(RawPick::Random) => Pick::Random,
                Some(RawPick::Unique) => Pick::Unique,
            };
            let path = std::path::absolute(&path).unwrap_or(path);
            self.data_digests.push(digest);
            self.feeders.push(Feeder {
                name: name_text.clone(),
                path,
                file: csv.value.clone(),
                columns,
                pick,
            });
        }
    }
}

/// The column names of a CSV file, checking that it has at least one row, and the
/// SHA-256 of its bytes. The file is read once: a file that changes between two
/// reads cannot give a header and a hash of different contents.
fn read_data(path: &std::path::Path) -> Result<(Vec<String>, [u8; 32]), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let digest = sha2::Sha256::digest(&bytes).into();
    Ok((read_header(&bytes)?, digest))
}

fn read_header(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = csv::Reader::from_reader(bytes);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read its header: {e}"))?
        .iter()
        .map(|c| c.trim().to_owned())
        .collect();
    if columns.is_empty() || columns.iter().all(String::is_empty) {
        return Err("it has no header line".into());
    }
    if let Some(dup) = columns
        .iter()
        .enumerate()
        .find(|(i, c)| columns[..*i].contains(c))
    {
        return Err(format!("the column `{}` appears twice", dup.1));
    }
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(columns),
        Ok(false) => Err("it has a header but no rows".into()),
        Err(e) => Err(format!("cannot read its first row: {e}")),
    }
}
