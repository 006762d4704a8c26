"""Knowledge sync: connectors that read other applications, and the engine that keeps each
workspace's tenant in line with them (full first sync, then incremental, resumable)."""
