// Template the parameter-file cases use.
@allowed([
  'northeurope'
  'westeurope'
])
param region string

param count int = 1
param label string
