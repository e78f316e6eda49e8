
ÿÿÿ

batch_sizePlaceholder*
shape:*
dtype0
6
phase_trainPlaceholder*
shape:*
dtype0

’

fifo_queueFIFOQueueV2"/device:CPU:**
shapes
:@@*
capacity*