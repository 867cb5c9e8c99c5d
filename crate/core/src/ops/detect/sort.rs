//! The orderings LiteRT's detection post-processing uses, reproduced so that ties come out in
//! LiteRT's order: `std::stable_sort` (the NMS's candidates: equal scores keep index order),
//! `ArgMaxVector` (an anchor's best class: the first maximum) and `std::partial_sort` as
//! libstdc++ implements it (an anchor's best classes when `max_classes_per_detection` > 1: a heap
//! select, then a heap sort — not stable, so equal scores come out in the heap's order, which this
//! reproduces step by step).
//!
//! The comparisons are C++'s `values[i] > values[j]`; a NaN compares false both ways, and
//! nothing here can panic on one.

/// `values[i] > values[j]`: the comparator of LiteRT's decreasing sorts.
fn greater(values: &[f32], i: usize, j: usize) -> bool {
    values[i] > values[j]
}

/// Indices `0..values.len()` by decreasing value, equal values in index order
/// (`DecreasingArgSort`: `std::stable_sort`).
pub(crate) fn decreasing_stable(values: &[f32]) -> Vec<usize> {
    // A merge sort by hand: it takes from the right run only when C++'s comparator says `>`,
    // so equal values keep index order, and a NaN (no order at all) cannot make it panic.
    let n = values.len();
    let mut idx: Vec<usize> = (0..n).collect();
    let mut buf = idx.clone();
    let mut width = 1;
    while width < n {
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut a, mut b) = (lo, mid);
            for slot in &mut buf[lo..hi] {
                let take_b = b < hi && (a >= mid || greater(values, idx[b], idx[a]));
                *slot = if take_b { idx[b] } else { idx[a] };
                if take_b {
                    b += 1;
                } else {
                    a += 1;
                }
            }
            lo = hi;
        }
        std::mem::swap(&mut idx, &mut buf);
        width *= 2;
    }
    idx
}

/// The index of the first maximum (`ArgMaxVector`; 0 for an empty slice).
pub(crate) fn arg_max(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate().skip(1) {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// `DecreasingPartialArgSort`: the first `k` entries of the result are the indices of the `k`
/// largest values in decreasing order, as LiteRT computes them — `ArgMaxVector` for `k = 1`,
/// libstdc++'s `std::partial_sort` of `0..n` otherwise. Entries past `k` are unspecified.
pub(crate) fn decreasing_partial(values: &[f32], k: usize) -> Vec<usize> {
    let n = values.len();
    if k == 1 {
        return vec![arg_max(values)];
    }
    let mut idx: Vec<usize> = (0..n).collect();
    let k = k.min(n);
    let less = |a: usize, b: usize| greater(values, a, b);
    // __heap_select, then __sort_heap.
    make_heap(&mut idx[..k], &less);
    for i in k..n {
        if less(idx[i], idx[0]) {
            pop_heap(&mut idx, k, i, &less);
        }
    }
    let mut last = k;
    while last > 1 {
        last -= 1;
        pop_heap(&mut idx, last, last, &less);
    }
    idx
}

/// libstdc++'s `__make_heap` on `v`.
fn make_heap(v: &mut [usize], less: &impl Fn(usize, usize) -> bool) {
    let len = v.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = v[parent];
        adjust_heap(v, parent, len, value, less);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// libstdc++'s `__pop_heap(first, first + len, first + result)`.
fn pop_heap(v: &mut [usize], len: usize, result: usize, less: &impl Fn(usize, usize) -> bool) {
    let value = v[result];
    v[result] = v[0];
    adjust_heap(v, 0, len, value, less);
}

/// libstdc++'s `__adjust_heap` followed by its `__push_heap`.
fn adjust_heap(v: &mut [usize], mut hole: usize, len: usize, value: usize, less: &impl Fn(usize, usize) -> bool) {
    let top = hole;
    let mut child = hole;
    while child < len.saturating_sub(1) / 2 {
        child = 2 * (child + 1);
        if less(v[child], v[child - 1]) {
            child -= 1;
        }
        v[hole] = v[child];
        hole = child;
    }
    if len & 1 == 0 && len >= 2 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[hole] = v[child - 1];
        hole = child - 1;
    }
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(v[parent], value) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sort_gives_the_k_largest_in_order() {
        let v = [0.3, 0.9, 0.1, 0.7, 0.5, 0.8, 0.2];
        for k in 2..=v.len() {
            let got = &decreasing_partial(&v, k)[..k];
            let want = &decreasing_stable(&v)[..k];
            assert_eq!(got, want, "k = {k}");
        }
        assert_eq!(decreasing_partial(&v, 1), vec![1]);
        assert_eq!(arg_max(&[1.0, 2.0, 2.0]), 1);
    }

    #[test]
    fn nan_and_empty_inputs_do_not_panic() {
        let v = [f32::NAN, 1.0, f32::NAN, 0.5];
        for k in 0..6 {
            let _ = decreasing_partial(&v, k);
        }
        assert_eq!(decreasing_stable(&v).len(), 4);
        assert!(decreasing_partial(&[], 3).is_empty());
    }
}
