
:
xPlaceholder*
dtype0*
shape:
I
BiasAdd/biasConst*
dtype0*%
valueB"!?ç×²?«I£?.§9?
C
BiasAddBiasAddxBiasAdd/bias*
T0*
data_formatNCHW

yIdentityBiasAdd*
T0
 
IdentityIdentityy*
T0"ª