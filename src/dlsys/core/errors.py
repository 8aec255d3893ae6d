"""Errors a user can fix. The stage runner prints them as one line, without a traceback."""


class UserError(Exception):
    """An expected, user-fixable problem: missing file, bad param, corrupt input."""


class DataFormatError(UserError):
    """A data file exists but does not have the format its reader expects."""


class MissingDataError(UserError):
    """Required data files are absent; the message says what they are and where to get them."""


class DownloadError(UserError):
    """A download failed, was refused, or did not match its published checksum."""
