class ConfigError(Exception):
    """A configuration or reference-data file is unusable: names the file, the field and why."""

    def __init__(self, path: str, field: str, reason: str) -> None:
        self.path, self.field, self.reason = str(path), field, reason
        super().__init__(f"{self.path}: {field}: {reason}")
