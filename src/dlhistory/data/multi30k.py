"""The raw Multi30k task 1 sentences: image captions in English with German and French translations.

D. Elliott, S. Frank, K. Sima'an & L. Specia, 2016, "Multi30K: Multilingual English-German Image
Descriptions", Proceedings of the 5th Workshop on Vision and Language. The standard small benchmark of
neural machine translation (WMT16 multimodal task 1): 29,000 training, 1,014 validation and 1,000 test
(2016 Flickr) sentence pairs. Research use; see github.com/multi30k/dataset.

Each split is one gzip'd text file per language, one sentence per line, aligned by line number.
"""

from __future__ import annotations

import gzip

from dlhistory.data.download import RemoteFile, fetch
from dlhistory.errors import DataError

LANGUAGES = ("de", "en", "fr")
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}
SIZES = {"train": 29000, "val": 1014, "test": 1000}

_HOME = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
_SHA256 = {  # from ../shared/data/README.md
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}

FILES: dict[str, RemoteFile] = {
    name: RemoteFile(dataset="multi30k", name=name, urls=(_HOME + name,), sha256=sha)
    for name, sha in _SHA256.items()
}


def load_sentences(split: str, language: str, data_dir: str | None = None) -> list[str]:
    """The sentences of ``split`` ('train', 'val' or 'test') in ``language``, verified, in file order."""
    if split not in SPLITS or language not in LANGUAGES:
        raise DataError(f"Multi30k has splits {tuple(SPLITS)} and languages {LANGUAGES}; "
                        f"got {split!r}/{language!r}")
    path = fetch(FILES[f"{SPLITS[split]}.{language}.gz"], data_dir)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    if len(lines) != SIZES[split]:  # the checksum passed, so this is a programming error, not bad data
        raise DataError(f"{path}: expected {SIZES[split]} sentences, found {len(lines)}")
    return lines
