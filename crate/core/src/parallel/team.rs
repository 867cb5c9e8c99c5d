//! A team of spinning threads for one run ([`super::on_pool`]): while a model runs, the pool's
//! other threads wait for the next parallel region by spinning on an atomic instead of going to
//! sleep, and the thread that runs the model waits for them the same way. A run of the person
//! detector has about 150 parallel regions of 0.1–0.5 ms each; handing each one to rayon means
//! a sleeping thread's wake-up per region, which in a browser's Web Workers (`Atomics.wait` /
//! `notify`) costs a sizeable part of the region itself.
//!
//! The regions are the same as rayon's: [`super::map`], [`super::for_each_mut`] and
//! [`super::join`] hand their tasks to the team when one is running on this thread. Each task
//! is taken by one thread (an atomic counter per thread's run of the tasks, [`Job`]), so every
//! output element is still computed by one task, in the same order as on one thread: results
//! are bit-identical. Parallel calls made inside a task run serially on that task's thread.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// One parallel region: `f(0) … f(n − 1)`. Each of the team's `m` threads owns a contiguous
/// run of the indices (member `j`: `j·n/m ..`) and takes its own first, one at a time, then
/// takes what is left of the others'. So when consecutive regions cut their data the same
/// way (1×1 convolutions: column bands, the same pixels in every layer), a thread mostly reads
/// what it wrote itself, from its own cache, instead of fetching lines from the other core's
/// (measured alone: a project layer's GEMM took 1.5× as long when its input had just been
/// written by the other thread); a busy or late thread's share is still taken by the others.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    /// Per member: the next index of its run, and the run's end.
    runs: Vec<(AtomicUsize, usize)>,
    done: AtomicUsize,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Job<'_> {
    /// `f` over `0..n` for a team of `members` threads.
    fn new<'a>(f: &'a (dyn Fn(usize) + Sync), n: usize, members: usize) -> Job<'a> {
        let m = members.max(1);
        let runs = (0..m).map(|j| (AtomicUsize::new(j * n / m), (j + 1) * n / m)).collect();
        Job { f, runs, done: AtomicUsize::new(0), panic: Mutex::new(None) }
    }

    /// Takes and runs tasks until none is left: member `me`'s own run, then the others'.
    fn work(&self, me: usize) {
        let _serial = InTask::enter();
        let m = self.runs.len();
        for j in (0..m).map(|d| (me + d) % m) {
            let (next, end) = &self.runs[j];
            loop {
                let i = next.fetch_add(1, SeqCst);
                if i >= *end {
                    break;
                }
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| (self.f)(i))) {
                    if let Ok(mut slot) = self.panic.lock() {
                        slot.get_or_insert(p);
                    }
                }
                self.done.fetch_add(1, SeqCst);
            }
        }
    }
}

/// The state the team's threads share.
pub(super) struct Team {
    /// The current region, or null between regions (type-erased `Job`, valid while
    /// `active > 0` or while its owner waits for it).
    job: AtomicPtr<()>,
    /// Bumped when a region is published.
    id: AtomicUsize,
    /// Helpers that may be reading `job` right now.
    active: AtomicUsize,
    /// Set when the run is over: the helpers return.
    quit: AtomicBool,
    /// Threads in the team, the leader (member 0) included.
    members: usize,
}

thread_local! {
    /// The team this thread leads (the thread running the model), if any.
    static LEADING: RefCell<Option<Arc<Team>>> = const { RefCell::new(None) };
    /// Whether this thread is inside a team task or is a helper: parallel calls run serially.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as inside a task until dropped.
struct InTask(bool);

impl InTask {
    fn enter() -> InTask {
        InTask(IN_TASK.with(|t| t.replace(true)))
    }
}

impl Drop for InTask {
    fn drop(&mut self) {
        let was = self.0;
        IN_TASK.with(|t| t.set(was));
    }
}

/// Whether parallel calls on this thread must run serially (inside a team task).
pub(super) fn in_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// The team this thread leads, if any.
pub(super) fn leading() -> Option<Arc<Team>> {
    LEADING.with(|l| l.borrow().clone())
}

impl Team {
    fn new(members: usize) -> Team {
        Team {
            job: AtomicPtr::new(std::ptr::null_mut()),
            id: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            members,
        }
    }

    /// `f(0) … f(n − 1)` on this thread and the helpers; returns when all are done. A task's
    /// panic is raised again here, after every task has finished.
    pub(super) fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let job = Job::new(f, n, self.members);
        self.job.store(&job as *const Job<'_> as *mut (), SeqCst);
        self.id.fetch_add(1, SeqCst);
        job.work(0);
        while job.done.load(SeqCst) < n {
            std::hint::spin_loop();
        }
        // No helper may still hold the job: unpublish it, then wait for those that read it.
        self.job.store(std::ptr::null_mut(), SeqCst);
        while self.active.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        let panic = job.panic.lock().map(|mut p| p.take()).unwrap_or(None);
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }

    /// Helper `me` (1 … members − 1): runs each published region's tasks until the team quits.
    fn help(&self, me: usize) {
        let _serial = InTask::enter();
        let mut seen = self.id.load(SeqCst);
        let mut idle: u32 = 0;
        while !self.quit.load(SeqCst) {
            let id = self.id.load(SeqCst);
            if id == seen {
                std::hint::spin_loop();
                idle = idle.wrapping_add(1);
                // A long wait (the model's serial steps): let the OS run something else now and
                // then. (A no-op in the browser, where each helper has a Web Worker of its own.)
                if idle.is_multiple_of(4096) {
                    std::thread::yield_now();
                }
                continue;
            }
            seen = id;
            self.active.fetch_add(1, SeqCst);
            let p = self.job.load(SeqCst) as *const Job<'_>;
            if !p.is_null() {
                // SAFETY: `run` keeps the job alive until it has unpublished it and seen
                // `active` at 0; we raised `active` before reading the pointer (all SeqCst),
                // so either we read null or `run` waits for us.
                unsafe { (*p).work(me) };
            }
            self.active.fetch_sub(1, SeqCst);
        }
    }
}

/// Runs `f` on the current rayon thread as the leader of a team with the pool's other
/// threads as spinning helpers; the helpers return when `f` does.
#[cfg(feature = "threads")]
pub(super) fn with_team<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let helpers = rayon::current_num_threads().saturating_sub(1);
    let team = Arc::new(Team::new(helpers + 1));
    // Called from outside the pool, the scope's body runs on one of the pool's threads.
    rayon::scope(|s| {
        let leader = rayon::current_thread_index();
        for me in 1..=helpers {
            let team = team.clone();
            s.spawn(move |_| {
                // A helper job that the leader itself picks up (waiting for the scope's end)
                // has nothing to do: the run is over by then.
                if rayon::current_thread_index() != leader {
                    team.help(me);
                }
            });
        }
        struct Lead(Option<Arc<Team>>, Arc<Team>);
        impl Drop for Lead {
            fn drop(&mut self) {
                self.1.quit.store(true, SeqCst);
                let prev = self.0.take();
                LEADING.with(|l| *l.borrow_mut() = prev);
            }
        }
        let _lead = Lead(LEADING.with(|l| l.borrow_mut().replace(team.clone())), team.clone());
        f()
    })
}
