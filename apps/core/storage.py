"""Static files in production: whitenoise's compressed manifest storage (hashed names, gzip/brotli),
minus the rewriting of source-map comments. Vendored libraries (Chart.js, …) point at .map files
they do not ship; Django's storage then fails ``collectstatic`` with MissingFileError, which made
PORTAL_ENV=production impossible to deploy. Maps are a debugging aid, not part of the site."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns):
    def keep(pattern) -> bool:
        regex = pattern if isinstance(pattern, str) else pattern[0]
        return "sourceMappingURL" not in regex

    return tuple((glob, tuple(p for p in group if keep(p))) for glob, group in patterns)


class PortalStaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = _without_source_maps(CompressedManifestStaticFilesStorage.patterns)
