"""The distinct accounts that start a burst in each time bin, one bin open at a time.

Campaign windows (``synchrony.py``) and co-activity fleets (``fleet.py``) both read
burst onsets this way: an account counts once per bin, a bin is final when the first
onset of a later bin arrives (event time only moves forward through the merge), and
an onset for a bin already closed is ignored rather than reopening it. What each does
with a closed bin is its own ``_close``.
"""

from __future__ import annotations


class OnsetBins:
    """Base for onset readers: ``onset`` is the hot path, ``_close`` the subclass's.

    ``max_participants`` caps the accounts one bin records (a bin everyone is in says
    nothing about anyone, and its list would be unbounded).
    """

    bin_s: float
    max_participants: int

    def _open_bins(self, bin_s: float, max_participants: int) -> None:
        self.bin_s = bin_s
        self.max_participants = max_participants
        self.bin: int | None = None
        self.members: list[str] = []
        self._in_bin: set[str] = set()

    def onset(self, account_id: str, ts: float) -> None:
        """Count a burst onset into its bin; a later bin closes the current one."""
        b = int(ts // self.bin_s)
        current = self.bin
        if current is None:
            self.bin = current = b
        if b > current:
            self._close(b)
        elif b < current:
            return  # late: its bin was closed already
        if account_id not in self._in_bin and len(self.members) < self.max_participants:
            self._in_bin.add(account_id)
            self.members.append(account_id)

    def _close(self, next_bin: int) -> None:
        """Judge the open bin (``self.bin``, ``self.members``), then :meth:`_start`."""
        raise NotImplementedError

    def _start(self, next_bin: int) -> None:
        self.bin = next_bin
        self.members = []
        self._in_bin = set()

    def _load_bin(self, bin_: int | None, members: list[str]) -> None:
        self.bin = bin_
        self.members = list(members)
        self._in_bin = set(self.members)
