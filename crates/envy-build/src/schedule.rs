//! Runs a DAG of jobs on `jobs` worker threads: a job starts once all its dependencies have
//! succeeded. After a failure no new job starts (unless `keep_going`); jobs that depend on a
//! failed one are skipped. Knows nothing of derivations.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex};

/// How one job ended.
#[derive(Debug)]
pub enum Outcome<E> {
    Done,
    Failed(E),
    /// Not run: a dependency failed, or the run stopped after another failure.
    Skipped,
}

struct State<K, E> {
    waiting_on: BTreeMap<K, usize>,
    ready: VecDeque<K>,
    running: usize,
    stop: bool,
    outcomes: BTreeMap<K, Outcome<E>>,
}

/// Run every job in `graph` (job → its dependencies, all of which must be keys too).
/// Returns each job's outcome.
pub fn run<K, E, F>(
    graph: &BTreeMap<K, Vec<K>>,
    jobs: usize,
    keep_going: bool,
    work: F,
) -> BTreeMap<K, Outcome<E>>
where
    K: Ord + Clone + Send + Sync,
    E: Send,
    F: Fn(&K) -> Result<(), E> + Sync,
{
    let mut dependents: BTreeMap<&K, Vec<&K>> = BTreeMap::new();
    let mut waiting_on = BTreeMap::new();
    for (job, deps) in graph {
        waiting_on.insert(job.clone(), deps.len());
        for dep in deps {
            dependents.entry(dep).or_default().push(job);
        }
    }
    let ready = graph
        .iter()
        .filter(|(_, deps)| deps.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    let state = Mutex::new(State {
        waiting_on,
        ready,
        running: 0,
        stop: false,
        outcomes: BTreeMap::new(),
    });
    let wake = Condvar::new();
    let worker = || {
        loop {
            let job = {
                let mut st = state.lock().expect("scheduler state");
                loop {
                    if !st.stop
                        && let Some(job) = st.ready.pop_front()
                    {
                        st.running += 1;
                        break Some(job);
                    }
                    if st.running == 0 {
                        break None;
                    }
                    st = wake.wait(st).expect("scheduler state");
                }
            };
            let Some(job) = job else {
                wake.notify_all();
                return;
            };
            let result = work(&job);
            let mut st = state.lock().expect("scheduler state");
            st.running -= 1;
            match result {
                Ok(()) => {
                    for next in dependents.get(&job).into_iter().flatten() {
                        let count = st.waiting_on.get_mut(*next).expect("every job is counted");
                        *count -= 1;
                        if *count == 0 {
                            st.ready.push_back((*next).clone());
                        }
                    }
                    st.outcomes.insert(job, Outcome::Done);
                }
                Err(e) => {
                    st.outcomes.insert(job, Outcome::Failed(e));
                    if !keep_going {
                        st.stop = true;
                    }
                }
            }
            drop(st);
            wake.notify_all();
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, graph.len().max(1)) {
            scope.spawn(worker);
        }
    });
    let mut outcomes = state.into_inner().expect("scheduler state").outcomes;
    for job in graph.keys() {
        outcomes.entry(job.clone()).or_insert(Outcome::Skipped);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn graph(
        edges: &[(&'static str, &[&'static str])],
    ) -> BTreeMap<&'static str, Vec<&'static str>> {
        edges.iter().map(|(k, deps)| (*k, deps.to_vec())).collect()
    }

    #[test]
    fn dependencies_run_first_and_independent_jobs_in_parallel() {
        let g = graph(&[("a", &[]), ("b", &[]), ("c", &["a", "b"])]);
        let order = Mutex::new(Vec::new());
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = run(&g, 2, false, |job| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            // Wait for the other independent job rather than sleeping a fixed time: under CPU
            // load a second worker may start late, which a fixed sleep mistook for no
            // parallelism. A scheduler that ran them one after the other times out here.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while *job != "c"
                && peak.load(Ordering::SeqCst) < 2
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            order.lock().unwrap().push(*job);
            now.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        });
        assert!(out.values().all(|o| matches!(o, Outcome::Done)));
        assert_eq!(order.lock().unwrap().last(), Some(&"c"));
        assert_eq!(
            peak.load(Ordering::SeqCst),
            2,
            "a and b ran at the same time"
        );
    }

    #[test]
    fn failure_skips_dependents() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &[]), ("d", &["c"])]);
        let out = run(
            &g,
            1,
            true,
            |job| if *job == "a" { Err("boom") } else { Ok(()) },
        );
        assert!(matches!(out["a"], Outcome::Failed("boom")));
        assert!(matches!(out["b"], Outcome::Skipped));
        assert!(matches!(out["d"], Outcome::Done));
        let out = run(
            &g,
            1,
            false,
            |job| if *job == "a" { Err("boom") } else { Ok(()) },
        );
        assert!(matches!(out["b"], Outcome::Skipped));
        assert!(
            matches!(out["d"], Outcome::Skipped),
            "stopped after the first failure"
        );
    }
}
