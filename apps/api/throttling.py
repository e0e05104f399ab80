from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class TokenUserRateThrottle(UserRateThrottle):
    """Requests per user (all of its tokens together), at the rate REST_FRAMEWORK's
    DEFAULT_THROTTLE_RATES["api_user"] gives; over it: 429 with Retry-After. Counted in the cache
    (Redis when CACHE_URL is set, so across processes)."""

    scope = "api_user"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
