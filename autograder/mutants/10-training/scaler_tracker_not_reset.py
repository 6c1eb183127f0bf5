"""DynamicLossScaler.update halves the scale on an overflow but does not reset the growth tracker."""


def _update(self, found_inf):
    if found_inf:
        self.loss_scale *= self.backoff_factor
        return
    self.growth_tracker += 1
    if self.growth_tracker >= self.growth_interval:
        self.loss_scale *= self.growth_factor
        self.growth_tracker = 0


DynamicLossScaler.update = _update
