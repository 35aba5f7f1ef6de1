"""The shipped configs (`dnajax train --config NAME`); installed as `dnajax.configs` from the repository's configs/."""
