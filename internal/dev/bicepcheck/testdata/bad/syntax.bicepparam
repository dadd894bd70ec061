using './template.bicep'

param region = 'northeurope'
param count = 3)
param label = 'x'
