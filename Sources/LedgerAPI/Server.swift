import Hummingbird
import Metrics
import Prometheus
