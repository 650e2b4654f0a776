//! When a task last ran: the latest run recorded in its pairs' state, read without
//! changing it (as `tandem status` reads it).

use jiff::Timestamp;

use crate::error::{Problem, TaskError};
use crate::spec::TaskSpec;

impl TaskSpec {
    /// The start of the task's latest run across its pairs, `None` if none ever ran. A
    /// dry run records nothing, and does not count.
    pub fn last_run(&self) -> Result<Option<Timestamp>, TaskError> {
        let mut latest: Option<Timestamp> = None;
        for (i, pair) in self.pairs().iter().enumerate() {
            let dir = TaskSpec::state_dir(pair);
            if !dir.join(tandem_state::DB_FILE).is_file() {
                continue;
            }
            let known = tandem_state::read_pair(&dir).map_err(|e| TaskError::Invalid {
                at: Box::new(self.at(&format!("sources[{i}]"))),
                problem: Box::new(Problem::State(e)),
            })?;
            let started = known
                .last_run
                .and_then(|r| Timestamp::from_second(r.started_at).ok());
            latest = latest.max(started);
        }
        Ok(latest)
    }
}
