"""The model-directory format: manifest.json (`manifest`), the JSON schema checks (`jsonfile`),
graph-file hashing and stamps (`filecheck`), and what each kind of output directory is
(`dirs`)."""
