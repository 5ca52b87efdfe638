//! Embedding lookup (llm.c's encoder without the positions): rows of a table picked by token ids.
//!
//! forward: `out[n] = weight[ids[n]]`, out (N, C), weight (V, C). backward (accumulates): the scatter-add
//! `dweight[ids[n]] += dout[n]` for every n, repeated ids adding up.
//!
//! Threads: the forward splits the N output rows. The backward splits the V rows of `dweight`: each task owns a
//! range of vocabulary rows and scans all the ids, adding the rows of `dout` whose id falls in its range, in
//! the order of n. No two tasks write the same row (no races, no atomics), and each row's sum runs in the same
//! order on any number of threads, so the results are bit-identical. The copies and adds are plain loops the
//! compiler vectorizes (they are memory-bound). Ids are checked by the op (`ops::nn::embedding`), not here.

use crate::dtype::{Element, Float};
use crate::parallel::{self, Rows};

/// `out[n] = weight[ids[n]]`: out (N, C), ids (N,) in `0..V`, weight (V, C).
pub fn embedding_forward<T: Element>(out: &mut [T], ids: &[i64], weight: &[T], c: usize) {
    debug_assert_eq!(out.len(), ids.len() * c);
    parallel::for_rows(out, c, 1, |n0, rows| {
        for (row, &id) in rows.chunks_exact_mut(c).zip(&ids[n0..]) {
            let id = id as usize;
            row.copy_from_slice(&weight[id * c..(id + 1) * c]);
        }
    });
}

/// `dweight[ids[n]] += dout[n]` for every n: dweight (V, C), dout (N, C), ids (N,) in `0..V`.
pub fn embedding_backward<T: Float>(dweight: &mut [T], dout: &[T], ids: &[i64], c: usize) {
    if c == 0 || dweight.is_empty() {
        return;
    }
    debug_assert_eq!(dout.len(), ids.len() * c);
    let v = dweight.len() / c;
    // the work is the N rows added, however many vocabulary rows there are: spread over the V rows
    let row_work = (ids.len() * c).div_ceil(v).max(1);
    parallel::for_row_parts(Rows::new(dweight, c), row_work, 1, |v0, rows| {
        let rows = rows.into_slice();
        let v1 = v0 + rows.len() / c;
        for (n, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if (v0..v1).contains(&id) {
                let (dst, src) = (&mut rows[(id - v0) * c..(id - v0 + 1) * c], &dout[n * c..(n + 1) * c]);
                dst.iter_mut().zip(src).for_each(|(a, &b)| *a += b);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_picks_rows_and_backward_adds_repeats() {
        // V = 5, C = 3; ids repeat (2 three times) and skip rows (1, 4)
        let weight: Vec<f64> = (0..15).map(|i| i as f64).collect();
        let ids = [2i64, 0, 2, 3, 2];
        let mut out = vec![0.0; 15];
        embedding_forward(&mut out, &ids, &weight, 3);
        assert_eq!(out, [6., 7., 8., 0., 1., 2., 6., 7., 8., 9., 10., 11., 6., 7., 8.]);
        let dout: Vec<f64> = (0..15).map(|i| 1.0 + i as f64 * 0.5).collect();
        let mut dw = vec![1.0; 15]; // accumulates onto ones
        embedding_backward(&mut dw, &dout, &ids, 3);
        let want = [
            1.0 + 2.5,
            1.0 + 3.0,
            1.0 + 3.5, // row 0: dout[1]
            1.0,
            1.0,
            1.0,
            1.0 + 1.0 + 4.0 + 7.0,
            1.0 + 1.5 + 4.5 + 7.5,
            1.0 + 2.0 + 5.0 + 8.0, // row 2: dout[0] + dout[2] + dout[4]
            1.0 + 5.5,
            1.0 + 6.0,
            1.0 + 6.5,
            1.0,
            1.0,
            1.0,
        ];
        assert_eq!(dw, want);
    }
}
