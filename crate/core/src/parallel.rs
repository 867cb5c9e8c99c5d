//! How the kernels and the quantization loops split their work across threads.
//!
//! With the `threads` feature the work runs on rayon's pool: the global one (the CLI builds it
//! once with `set_threads`; the page's worker gets its own from wasm-bindgen-rayon), or the
//! pool a caller `with_threads` installs. Without the feature every helper here is a plain
//! loop on the calling thread and [`threads`] is 1, so the single-thread wasm build carries no
//! pool at all. The core never starts a thread itself.
//!
//! Results never depend on the number of threads. Each helper runs independent tasks whose
//! results come back in index order; every kernel splits its output so that each element is
//! computed by one task with the same accumulation order as on one thread, and anything
//! merged across tasks (images, layers) is merged in a fixed order. Small work stays on the
//! calling thread ([`tasks`]): a task on another thread costs a few microseconds.

use std::ops::Range;

#[cfg(feature = "threads")]
mod team;

/// Least work (multiply-adds, or element operations) worth one task of its own.
pub const MIN_TASK_WORK: usize = 1 << 16;

/// Tasks per thread when the work allows: smaller tasks balance better on a busy machine (a
/// core taken by another program just does fewer of them), larger ones pay less per task; 2
/// was faster than 4 and as fast as 1 on the person detector (docs/measurements.md, Threads).
const TASKS_PER_THREAD: usize = 2;

/// Threads the work may use: the current rayon pool's size with the `threads` feature, else 1.
pub fn threads() -> usize {
    #[cfg(feature = "threads")]
    {
        if team::in_task() {
            return 1;
        }
        rayon::current_num_threads().max(1)
    }
    #[cfg(not(feature = "threads"))]
    {
        1
    }
}

/// Runs `f` (a whole model run) on one of the pool's threads, with the pool's other threads as
/// a spinning team ([`team`]) for its parallel regions, and returns its result. The page's
/// worker is outside wasm-bindgen-rayon's pool: from there every kernel's parallel region would
/// be a hand-over to the pool and a wake-up back; inside the pool, rayon still puts idle
/// threads to sleep between regions, and a Web Worker's wake-up costs about as much as a small
/// region. The team's threads spin instead, for the length of `f`. Called on a pool thread
/// (the CLI's calling thread is one: `use_current_thread`), `f` runs right there as the team's
/// leader; on one thread, inside another `on_pool`, or without the `threads` feature, `f` just
/// runs. `f` must not touch anything tied to the calling thread (a JavaScript value).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "threads")]
    if threads() > 1 && team::leading().is_none() {
        return team::with_team(f);
    }
    f()
}

/// How many tasks to split `work` into, at most `max_tasks` (the number of pieces the work can
/// be cut into): 1 on one thread or when the work is small, otherwise up to four per thread,
/// each worth at least [`MIN_TASK_WORK`].
pub fn tasks(work: usize, max_tasks: usize) -> usize {
    let t = threads();
    if t <= 1 || work < 2 * MIN_TASK_WORK {
        return 1;
    }
    (t * TASKS_PER_THREAD).min(work / MIN_TASK_WORK).min(max_tasks).max(1)
}

/// `f(0), f(1), …, f(n − 1)`, possibly in parallel; the results in index order.
pub fn map<R, F>(n: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize) -> R + Sync + Send,
{
    #[cfg(feature = "threads")]
    if n > 1 && threads() > 1 {
        if team::leading().is_some() {
            let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
            for_each_mut(&mut slots, |i, s| *s = Some(f(i)));
            return slots.into_iter().map(|r| r.expect("every task ran")).collect();
        }
        use rayon::prelude::*;
        return (0..n).into_par_iter().map(f).collect();
    }
    (0..n).map(f).collect()
}

/// [`map`] for fallible tasks: every task runs, and the first error in index order is returned
/// (the one a loop on one thread would have stopped at).
pub fn try_map<R, E, F>(n: usize, f: F) -> Result<Vec<R>, E>
where
    R: Send,
    E: Send,
    F: Fn(usize) -> Result<R, E> + Sync + Send,
{
    map(n, f).into_iter().collect()
}

/// [`try_map`] with at most one task per thread in flight: for tasks that each hold much
/// memory while they run (a forward's tensors). A plain parallel map may start more of them at
/// once, as a thread waiting inside one task's kernel steals the next task.
pub fn try_map_few<R, E, F>(n: usize, f: F) -> Result<Vec<R>, E>
where
    R: Send,
    E: Send,
    F: Fn(usize) -> Result<R, E> + Sync + Send,
{
    let mut out = Vec::with_capacity(n);
    try_for_each_few(n, f, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// [`try_map_few`] handing each result to `sink` in index order as soon as its group of tasks
/// is done, so that large results (a batch's gradients) need not all be kept at once.
pub fn try_for_each_few<R, E, F>(n: usize, f: F, mut sink: impl FnMut(R) -> Result<(), E>) -> Result<(), E>
where
    R: Send,
    E: Send,
    F: Fn(usize) -> Result<R, E> + Sync + Send,
{
    let at_once = threads().max(1);
    for start in (0..n).step_by(at_once) {
        let mut slots: Vec<Option<Result<R, E>>> = (start..n.min(start + at_once)).map(|_| None).collect();
        for_each_mut(&mut slots, |i, slot| *slot = Some(f(start + i)));
        for r in slots.into_iter().flatten() {
            sink(r?)?;
        }
    }
    Ok(())
}

/// `f(i, &mut items[i])` for every item, possibly in parallel.
pub fn for_each_mut<T, F>(items: &mut [T], f: F)
where
    T: Send,
    F: Fn(usize, &mut T) + Sync + Send,
{
    #[cfg(feature = "threads")]
    if items.len() > 1 && threads() > 1 {
        if let Some(team) = team::leading() {
            /// The items' base pointer, shared: task `i` touches item `i` only.
            struct Items<T>(*mut T);
            // SAFETY: each index is taken by exactly one task (the team's counter), so the
            // `&mut` made from it is unique; `T: Send` lets it be used on another thread.
            unsafe impl<T: Send> Sync for Items<T> {}
            let (base, n) = (Items(items.as_mut_ptr()), items.len());
            let base = &base;
            // SAFETY: i < n = items.len(), and the team runs each index once while `items`
            // is borrowed here.
            team.run(n, &|i| f(i, unsafe { &mut *base.0.add(i) }));
            return;
        }
        use rayon::prelude::*;
        items.par_iter_mut().enumerate().for_each(|(i, t)| f(i, t));
        return;
    }
    for (i, t) in items.iter_mut().enumerate() {
        f(i, t);
    }
}

/// [`for_each_mut`] for fallible tasks: the first error in index order.
pub fn try_for_each_mut<T, E, F>(items: &mut [T], f: F) -> Result<(), E>
where
    T: Send,
    E: Send,
    F: Fn(usize, &mut T) -> Result<(), E> + Sync + Send,
{
    let mut results: Vec<Result<(), E>> = Vec::new();
    results.resize_with(items.len(), || Ok(()));
    let mut pairs: Vec<(&mut T, &mut Result<(), E>)> = items.iter_mut().zip(results.iter_mut()).collect();
    for_each_mut(&mut pairs, |i, (t, r)| **r = f(i, t));
    drop(pairs);
    results.into_iter().collect()
}

/// `(a(), b())`, the two possibly at once.
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    #[cfg(feature = "threads")]
    if threads() > 1 {
        if team::leading().is_some() {
            enum Side<A, B, RA, RB> {
                A(Option<A>, Option<RA>),
                B(Option<B>, Option<RB>),
            }
            let mut sides = [Side::A(Some(a), None), Side::B(Some(b), None)];
            for_each_mut(&mut sides, |_, s| match s {
                Side::A(f, r) => *r = f.take().map(|f| f()),
                Side::B(f, r) => *r = f.take().map(|f| f()),
            });
            let [Side::A(_, Some(ra)), Side::B(_, Some(rb))] = sides else { unreachable!("both sides ran") };
            return (ra, rb);
        }
        return rayon::join(a, b);
    }
    (a(), b())
}

/// `0..len` cut into `parts` contiguous ranges of nearly equal length whose inner boundaries
/// are multiples of `align` (so blocked kernels keep whole blocks); fewer when `len` is short.
pub fn split(len: usize, parts: usize, align: usize) -> Vec<Range<usize>> {
    let align = align.max(1);
    let blocks = len.div_ceil(align);
    let parts = parts.clamp(1, blocks.max(1));
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let end = ((blocks * (p + 1) / parts) * align).min(len);
        if end > start {
            out.push(start..end);
            start = end;
        }
    }
    if out.is_empty() {
        out.push(0..len);
    }
    out
}

/// `n` copies of `value`, written by the threads a part each: an op's output buffer, which on one
/// thread would be filled before the op's parallel work starts (memory fresh from the allocator
/// is not zero, so even zeros are written).
pub fn filled<T: Copy + Send + Sync>(n: usize, value: T) -> Vec<T> {
    let parts = split(n, tasks(n, n), 1);
    if parts.len() <= 1 {
        return vec![value; n];
    }
    let mut v: Vec<T> = Vec::with_capacity(n);
    let mut pieces = split_parts(&mut v.spare_capacity_mut()[..n], 1, &parts);
    for_each_mut(&mut pieces, |_, p| {
        for x in p.iter_mut() {
            x.write(value);
        }
    });
    // SAFETY: the parts cover 0..n, and every element of them was written above.
    unsafe { v.set_len(n) };
    v
}

/// The rows `0..rows` (stride `ld`, each at least `width` long) of the row-major matrix `c`,
/// cut at the column ranges `bands`: `out[b][i]` is row `i`'s columns `bands[b]`. Disjoint
/// mutable views, so each band can go to its own task. `c` must hold the rows
/// (`(rows − 1)·ld + width` elements) and the bands must be increasing and within `width`;
/// the callers check their sizes first.
pub fn column_bands<'a, T>(c: &'a mut [T], rows: usize, ld: usize, bands: &[Range<usize>]) -> Vec<Vec<&'a mut [T]>> {
    let mut out: Vec<Vec<&'a mut [T]>> = bands.iter().map(|_| Vec::with_capacity(rows)).collect();
    let mut rest = c;
    for i in 0..rows {
        let take = if i + 1 < rows { ld.min(rest.len()) } else { rest.len() };
        let (mut row, tail) = std::mem::take(&mut rest).split_at_mut(take);
        rest = tail;
        // Clamped, so a bad band gives short pieces rather than a panic.
        let mut at = 0;
        for (b, band) in bands.iter().enumerate() {
            let skip = band.start.saturating_sub(at).min(row.len());
            let (_, r) = std::mem::take(&mut row).split_at_mut(skip);
            let len = band.end.saturating_sub(band.start.max(at)).min(r.len());
            let (piece, r) = r.split_at_mut(len);
            out[b].push(piece);
            row = r;
            at = at.max(band.end);
        }
    }
    out
}

/// Consecutive pieces of `data`: piece `p` is elements `parts[p].start · unit ..
/// parts[p].end · unit` (clamped to the data), for parts in increasing order.
pub fn split_parts<'a, T>(data: &'a mut [T], unit: usize, parts: &[Range<usize>]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(parts.len());
    let (mut rest, mut at) = (data, 0);
    for p in parts {
        let skip = (p.start * unit).saturating_sub(at).min(rest.len());
        let (_, r) = std::mem::take(&mut rest).split_at_mut(skip);
        let len = (p.end.saturating_sub(p.start) * unit).min(r.len());
        let (piece, r) = r.split_at_mut(len);
        out.push(piece);
        rest = r;
        at += skip + len;
    }
    out
}

/// How a kernel's `m × n` output is cut into blocks, one task each: column bands first, then
/// row blocks, each at least its minimum size and aligned to the kernel's register tile.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The row ranges.
    pub rows: Vec<Range<usize>>,
    /// The column ranges.
    pub cols: Vec<Range<usize>>,
}

/// One block of a [`Grid`] over a row-major matrix.
#[derive(Debug)]
pub struct Block<'a, T> {
    /// Its rows.
    pub rows: Range<usize>,
    /// Its columns.
    pub cols: Range<usize>,
    /// Row `rows.start + i` of the matrix over `cols`, for each `i`.
    pub rows_of_c: Vec<&'a mut [T]>,
}

impl Grid {
    /// The cut of an `m × n` output costing `work` on the current pool; `(align, min)` for the
    /// rows and for the columns.
    pub fn new(m: usize, n: usize, work: usize, rows: (usize, usize), cols: (usize, usize)) -> Grid {
        let tasks = tasks(work, usize::MAX);
        let col_parts = tasks.min(n / cols.1.max(1)).max(1);
        let row_parts = (tasks / col_parts).min(m / rows.1.max(1)).max(1);
        Grid { rows: split(m, row_parts, rows.0), cols: split(n, col_parts, cols.0) }
    }

    /// Whether there is one block only.
    pub fn is_single(&self) -> bool {
        self.rows.len() * self.cols.len() <= 1
    }

    /// Disjoint views of the row-major `c` (row stride `ld`) for each block.
    pub fn blocks<'a, T>(&self, c: &'a mut [T], ld: usize) -> Vec<Block<'a, T>> {
        let m = self.rows.last().map_or(0, |r| r.end);
        let mut out = Vec::with_capacity(self.rows.len() * self.cols.len());
        for (cols, mut band) in self.cols.iter().zip(column_bands(c, m, ld, &self.cols)) {
            for rows in self.rows.iter().rev() {
                let rows_of_c = band.split_off(rows.start.min(band.len()));
                out.push(Block { rows: rows.clone(), cols: cols.clone(), rows_of_c });
            }
        }
        out
    }
}

/// Makes rayon's global pool `n` threads (the CLI's `--threads`), the calling thread one of
/// them: its parallel work then starts on it at once and the other `n − 1` threads steal
/// from it, where a thread outside the pool would hand each kernel's tasks over and sleep
/// until they are done (a wake-up each way per kernel, tens of microseconds on a virtual
/// machine). Once per process, before any parallel work, from the thread that does the work.
/// An error when `n` is 0 or the pool exists already or cannot start.
#[cfg(feature = "threads")]
pub fn set_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("the thread count must be at least 1".into());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .use_current_thread()
        .thread_name(|i| format!("qplay-{i}"))
        .build_global()
        .map_err(|e| format!("cannot start {n} threads: {e}"))
}

/// Runs `f` with a pool of `n` threads of its own (tests compare thread counts this way).
#[cfg(feature = "threads")]
pub fn with_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    if n == 0 {
        return Err("the thread count must be at least 1".into());
    }
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| format!("cannot start {n} threads: {e}"))?;
    Ok(pool.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_alignment_and_covers_everything() {
        assert_eq!(split(100, 3, 8), vec![0..32, 32..64, 64..100]);
        assert_eq!(split(10, 4, 8), vec![0..8, 8..10]);
        assert_eq!(split(0, 4, 8), vec![0..0]);
        assert_eq!(split(7, 1, 4), vec![0..7]);
        for (len, parts, align) in [(1, 5, 1), (33, 7, 4), (1000, 8, 8), (9, 9, 1)] {
            let r = split(len, parts, align);
            assert_eq!(r.first().unwrap().start, 0);
            assert_eq!(r.last().unwrap().end, len);
            for w in r.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert_eq!(w[0].end % align, 0);
            }
        }
    }

    #[test]
    fn column_bands_are_the_columns_of_each_row() {
        let (rows, ld) = (3, 7);
        let mut c: Vec<usize> = (0..(rows - 1) * ld + 5).collect();
        let bands = [0..2, 2..5];
        let got = column_bands(&mut c, rows, ld, &bands);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].iter().map(|r| r.to_vec()).collect::<Vec<_>>(), vec![vec![0, 1], vec![7, 8], vec![14, 15]]);
        assert_eq!(got[1][2], [16, 17, 18]);
    }

    #[test]
    fn helpers_keep_index_order_and_report_the_first_error() {
        assert_eq!(map(5, |i| i * i), vec![0, 1, 4, 9, 16]);
        let r: Result<Vec<usize>, String> = try_map(6, |i| if i % 2 == 1 { Err(format!("e{i}")) } else { Ok(i) });
        assert_eq!(r.unwrap_err(), "e1");
        let mut v = vec![0; 4];
        let set = |i: usize, x: &mut usize| {
            if i >= 2 {
                return Err(i);
            }
            *x = i + 1;
            Ok(())
        };
        assert_eq!(try_for_each_mut(&mut v, set), Err(2));
        assert_eq!(v[..2], [1, 2]);
        assert_eq!(join(|| 1, || "b"), (1, "b"));
        assert_eq!(tasks(10, 100), 1);
    }
}
