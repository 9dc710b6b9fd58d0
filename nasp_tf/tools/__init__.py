"""The programs around a search: retrained runs side by side (`compare`) and a
local cluster of workers (`launcher`)."""
