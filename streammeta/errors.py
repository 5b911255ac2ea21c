class StreamMetaError(Exception):
    """Root of every error streammeta raises."""
