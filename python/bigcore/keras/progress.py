"""A Keras-like progress bar: ``45/45 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - accuracy: 0.9 - loss: 0.3``.
Redraws in place on a terminal (at most 10 times a second); writes only the final line of each epoch elsewhere."""

import sys
import time


class ProgressBar:
    def __init__(self, total, verbose=1, file=None):
        self.total, self.verbose = total, verbose
        self.file = file or sys.stdout
        self.tty = hasattr(self.file, "isatty") and self.file.isatty()
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def _line(self, done, logs):
        width = 20
        total = self.total if self.total is not None else done  # a generator's length is known at the end
        filled = width if total == 0 else int(width * done / total)
        elapsed = time.perf_counter() - self.start
        per = elapsed / max(done, 1)
        rate = f"{per * 1e3:.0f}ms/step" if per >= 1e-3 else f"{per * 1e6:.0f}us/step"
        of = self.total if self.total is not None else "Unknown"
        parts = [f"{done}/{of}", "━" * filled + " " * (width - filled), f"{elapsed:.0f}s {rate}"]
        parts = [" ".join(parts)] + [f"{k}: {v:.4f}" for k, v in logs.items()]
        return " - ".join(parts)

    def update(self, done, logs):
        if self.verbose != 1 or not self.tty:
            return
        now = time.perf_counter()
        if now - self.last_draw >= 0.1:
            self.last_draw = now
            self.file.write("\r" + self._line(done, logs))
            self.file.flush()

    def finish(self, logs, done=None):
        if self.verbose == 0:
            return
        if self.total is None:
            self.total = done
        self.file.write(("\r" if self.tty else "") + self._line(self.total if done is None else done, logs) + "\n")
        self.file.flush()
