"""Reading ``text,label`` pairs for ``bigcore finetune``: CSV (with a header naming the two columns, or two
columns and no header) and JSON Lines (one object per line). Every mistake is a ``CLIError`` naming the file and
the line."""

import csv
import json

from ._common import CLIError, reading


def read_pairs(path, text_column="text", label_column="label"):
    """``(texts, labels)``: two lists of strings (labels as written; JSON numbers become their text).

    Raises:
        CLIError: a missing or unreadable file, an unknown format, missing columns, an empty text or label.
    """
    kind = "jsonl" if path.endswith((".jsonl", ".json")) else "csv" if path.endswith((".csv", ".tsv")) else None
    if kind is None:
        raise CLIError(f"{path}: expected a .csv, .tsv or .jsonl file of text,label pairs")
    with reading(path, "data file"):
        with open(path, encoding="utf-8", newline="") as f:
            pairs = _jsonl(f, path, text_column, label_column) if kind == "jsonl" else \
                _csv(f, path, text_column, label_column, "\t" if path.endswith(".tsv") else ",")
    if not pairs:
        raise CLIError(f"{path} holds no text,label pairs")
    texts, labels = [], []
    for line, text, label in pairs:
        text = text.rstrip()  # trailing whitespace carries no meaning, and no text may end in the padding id
        if not text:
            raise CLIError(f"{path}:{line}: the text is empty")
        if label == "":
            raise CLIError(f"{path}:{line}: the label is empty")
        texts.append(text)
        labels.append(label)
    return texts, labels


def _csv(f, path, text_column, label_column, delimiter):
    rows = csv.reader(f, delimiter=delimiter)
    try:
        header = next(rows)
    except StopIteration:
        return []
    except csv.Error as e:
        raise CLIError(f"{path}:1: {e}") from None
    if text_column in header and label_column in header:
        ti, li, first = header.index(text_column), header.index(label_column), []
    elif len(header) == 2:
        ti, li, first = 0, 1, [(1, header[0], header[1])]  # no header: the first row is data
    else:
        raise CLIError(f"{path}: no columns {text_column!r} and {label_column!r} in the header {header} (name them "
                       f"with --text-column and --label-column)")
    out = first
    try:
        for row in rows:
            if not row:
                continue
            if len(row) <= max(ti, li):
                raise CLIError(f"{path}:{rows.line_num}: {len(row)} column(s), expected {max(ti, li) + 1}")
            out.append((rows.line_num, row[ti], row[li]))
    except csv.Error as e:
        raise CLIError(f"{path}:{rows.line_num}: {e}") from None
    return out


def _jsonl(f, path, text_column, label_column):
    out = []
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CLIError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or text_column not in obj or label_column not in obj:
            raise CLIError(f"{path}:{n}: expected an object with {text_column!r} and {label_column!r}")
        text, label = obj[text_column], obj[label_column]
        if not isinstance(text, str) or not isinstance(label, (str, int)) or isinstance(label, bool):
            raise CLIError(f"{path}:{n}: {text_column!r} must be a string and {label_column!r} a string or integer")
        out.append((n, text, str(label)))
    return out


def label_names(labels):
    """The distinct labels in id order: numerically when all are integers, else alphabetically."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)
